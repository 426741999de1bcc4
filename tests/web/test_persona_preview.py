"""A look, pose or edit is shown beside the current face before it is made."""

import base64
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.models import AuditEvent
from avatars.models import PersonaVersion
from avatars.services import library_item_create, persona_edit_preview
from generation.services.directions import directions_compute
from tests.conftest import PASSWORD


@pytest.fixture
def direction(generator_model):
    directions_compute(model_id=generator_model.pk)
    return generator_model.directions.model_wide().get(name="coarse-pca-0")


def previews(response):
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', response.content.decode())
    ]


def test_it_previews_an_edit_without_making_a_version(client, member, brand, persona, direction):
    assert client.login(username="member", password=PASSWORD)
    url = reverse("persona-edit", args=[brand.slug, persona.pk])
    data = {
        "direction": direction.pk,
        "strength": direction.strength_max,
        "expected_version": persona.current_version_id,
    }
    response = client.post(url, {**data, "preview": "1"})
    assert response.status_code == 200
    before, after = previews(response)
    assert before.startswith(b"\x89PNG") and after.startswith(b"\x89PNG") and before != after
    assert "a preview only: nothing is saved yet" in response.content.decode()
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 1
    assert not AuditEvent.objects.filter(action="persona.version_created", after__version=2).exists()
    assert client.post(url, data).status_code == 302  # the same form, committed
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 2


def test_it_previews_a_look_and_refuses_what_the_change_would_refuse(client, member, brand, persona, generator_model):
    look = library_item_create(
        actor=member, brand=brand, model=generator_model, kind="look", name="Other", layer_group="fine", seed=9
    )
    assert client.login(username="member", password=PASSWORD)
    url = reverse("persona-apply", args=[brand.slug, persona.pk])
    response = client.post(url, {"item": look.pk, "preview": "1", "expected_version": persona.current_version_id})
    before, after = previews(response)
    assert response.status_code == 200 and before != after
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 1


def test_a_viewer_cannot_preview_and_an_outsider_gets_404(client, viewer, outsider, brand, persona, direction):
    with pytest.raises(PermissionDenied):
        persona_edit_preview(actor=viewer, brand=brand, persona=persona, direction=direction, strength=1.0)
    url = reverse("persona-edit", args=[brand.slug, persona.pk])
    assert client.login(username="outsider", password=PASSWORD)
    assert client.post(url, {"direction": direction.pk, "strength": 1.0, "preview": "1"}).status_code == 404
