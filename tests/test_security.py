"""One-line logging of refusals."""

import logging

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from config.security import permission_denied


def test_it_logs_a_refusal_as_one_line_with_user_brand_and_path(client, viewer, brand, caplog):
    client.force_login(viewer)
    url = reverse("persona-create", args=[brand.slug])

    with caplog.at_level(logging.INFO):
        response = client.get(url)

    assert response.status_code == 403 and "Not allowed" in response.content.decode()
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) == 1, caplog.text
    (refusal,) = refusals
    assert refusal.levelno == logging.WARNING and refusal.exc_info is None
    line = refusal.getMessage()
    assert "\n" not in line
    assert f"user=viewer brand={brand.slug} GET {url}" in line
    assert "Traceback" not in caplog.text


def test_it_keeps_a_refusal_on_one_line_whatever_the_path_and_reason(rf, caplog):
    request = rf.get("/brands/acme/x%0Aforged%0D")
    request.user = AnonymousUser()
    with caplog.at_level(logging.WARNING):
        permission_denied(request, PermissionDenied("first\nsecond"))
    (refusal,) = caplog.records
    line = refusal.getMessage()
    assert "\n" not in line and "\r" not in line
    assert line == r"Forbidden: user=anonymous brand=- GET /brands/acme/x\nforged\r reason=first\nsecond"
