"""Sign-in throttling (django-axes, per username and address) and one-line
logging of refusals."""

import logging
from datetime import timedelta

from axes.models import AccessAttempt
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from config.security import client_address, permission_denied
from tests.conftest import PASSWORD

LOCKED = "Too many failed sign-ins for this account from your address; try again in 15 minutes."
HOME = "10.0.0.1"


def sign_in(client, username, password, address=HOME):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client):
    return "_auth_user_id" in client.session


def fail(client, username, times, address=HOME):
    return [sign_in(client, username, "wrong password", address).status_code for _ in range(times)]


def test_it_locks_a_username_out_from_an_address_after_five_failures_even_with_the_right_password(client, owner):
    assert fail(client, "owner", 4) == [200] * 4  # the form again, with its error

    fifth = sign_in(client, "owner", "wrong password")
    assert fifth.status_code == 429 and LOCKED in fifth.content.decode()

    right = sign_in(client, "owner", PASSWORD)
    assert right.status_code == 429 and not signed_in(client)
    page = right.content.decode()
    assert LOCKED in page and 'name="password"' in page and 'value="owner"' in page  # the login form, saying why


def test_it_does_not_lock_out_another_user_at_the_same_address(client, owner, member):
    fail(client, "owner", 5)
    assert sign_in(client, "owner", PASSWORD).status_code == 429

    response = sign_in(client, "member", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_it_does_not_lock_out_the_same_user_at_another_address(client, owner):
    fail(client, "owner", 5)

    response = sign_in(client, "owner", PASSWORD, address="10.0.0.2")
    assert response.status_code == 302 and signed_in(client)


def test_it_counts_failures_again_from_zero_after_a_success(client, owner):
    fail(client, "owner", 4)
    assert sign_in(client, "owner", PASSWORD).status_code == 302
    client.logout()

    assert fail(client, "owner", 4) == [200] * 4
    assert sign_in(client, "owner", PASSWORD).status_code == 302


def test_it_lets_the_user_in_again_after_the_cool_off(client, owner):
    fail(client, "owner", 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert sign_in(client, "owner", PASSWORD).status_code == 302 and signed_in(client)


def test_it_keeps_the_test_clients_login_working(client, owner):
    # No request, so nothing to count an address against (see config.security).
    assert client.login(username="owner", password=PASSWORD)
    assert not client.login(username="owner", password="wrong password")


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


def test_it_tells_clients_apart_behind_a_proxy_by_the_address_the_proxy_appended(client, owner, settings):
    settings.PROXY_COUNT = 1
    proxy = "10.9.9.9"

    def via_proxy(forwarded_for, password):
        return client.post(
            reverse("login"), {"username": "owner", "password": password},
            REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded_for,
        )  # fmt: skip

    # What one real proxy sends: the client's address alone.
    assert [via_proxy("203.0.113.7", "wrong password").status_code for _ in range(5)][-1] == 429
    assert via_proxy("203.0.113.7", PASSWORD).status_code == 429
    # The client cannot escape by forging addresses left of the one the proxy appended...
    assert via_proxy("6.6.6.1, 203.0.113.7", PASSWORD).status_code == 429
    # ...and another client behind the same proxy is not locked out.
    response = via_proxy("198.51.100.4", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_it_takes_the_address_the_proxy_appended_or_the_peer(rf, settings):
    settings.PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.1, 203.0.113.7")
    assert client_address(request) == "203.0.113.7"
    assert client_address(rf.get("/", REMOTE_ADDR="10.9.9.9")) == "10.9.9.9"
    settings.PROXY_COUNT = 0
    assert client_address(request) == "10.9.9.9"  # no proxy trusted: the header is the client's own words
