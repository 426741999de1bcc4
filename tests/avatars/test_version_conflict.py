"""The persona page's changes carry the version they were made against
(`expected_version`): a change against a version that is no longer current is
refused (409 on the edit and apply forms, a message on rollback) and writes
nothing; against the current version it goes through."""

import re

import numpy as np
import pytest
from django.urls import reverse

from audit.models import AuditEvent
from avatars.models import PersonaVersion
from avatars.services import library_item_create, persona_edit
from generation.models import Direction

CONFLICT = "This persona changed since you opened it: it is now version {number}, by {user} at "


@pytest.fixture
def direction(generator_model):
    vector = np.zeros(generator_model.w_dim, dtype="<f4")
    vector[0] = 1.0
    return Direction.objects.create(
        model=generator_model, name="coarse-test", kind="sefa", layer_group="coarse",
        vector=vector.tobytes(), strength_min=-2.0, strength_max=2.0,
    )  # fmt: skip


@pytest.fixture
def look(owner, brand, generator_model):
    return library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Gala", layer_group="fine", seed=5
    )


@pytest.fixture
def moved_on(persona, member, brand, direction):
    """Someone else (the member) made version 2 after the owner opened version 1."""
    opened = persona.current_version
    second = persona_edit(actor=member, brand=brand, persona=persona, direction=direction, strength=0.5)
    persona.refresh_from_db()
    return opened, second


def writes(brand, persona):
    """What a change would write: the persona's versions and the brand's audit rows."""
    return (
        sorted(PersonaVersion.objects.for_brand(brand).filter(persona=persona).values_list("number", flat=True)),
        AuditEvent.objects.for_brand(brand).count(),
        PersonaVersion.objects.for_brand(brand).get(pk=persona.current_version_id).number,
    )


def hidden_expected_version(content):
    return re.findall(r'<input type="hidden" name="expected_version" value="(\d+)"', content)


def test_it_refuses_an_edit_against_a_stale_version_with_409_and_saves_nothing(
    client, owner, brand, persona, direction, moved_on
):
    opened, second = moved_on
    before = writes(brand, persona)
    client.force_login(owner)

    response = client.post(
        reverse("persona-edit", args=[brand.slug, persona.pk]),
        {"direction": direction.pk, "strength": 1.0, "expected_version": opened.pk},
    )

    assert response.status_code == 409
    content = response.content.decode()
    assert CONFLICT.format(number=2, user="member") in content
    assert "Nothing was saved; look at the new version and try again." in content
    # The form comes back against the new current version, so submitting it again is a deliberate choice.
    assert str(second.pk) in hidden_expected_version(content) and str(opened.pk) not in hidden_expected_version(content)
    assert writes(brand, persona) == before == ([1, 2], before[1], 2)


def test_it_makes_the_edit_against_the_current_version(client, owner, brand, persona, direction, moved_on):
    _, second = moved_on
    client.force_login(owner)

    response = client.post(
        reverse("persona-edit", args=[brand.slug, persona.pk]),
        {"direction": direction.pk, "strength": 1.0, "expected_version": second.pk},
    )

    assert response.status_code == 302
    assert response.url == reverse("persona-detail", args=[brand.slug, persona.pk])
    persona.refresh_from_db()
    third = persona.current_version
    assert (third.number, third.parent_id, third.created_by) == (3, second.pk, owner)
    np.testing.assert_allclose(third.latent_array()[:4, 0] - second.latent_array()[:4, 0], 1.0, atol=1e-6)
    assert (
        AuditEvent.objects.for_brand(brand).filter(action="persona.version_created", target_id=str(third.pk)).exists()
    )


def test_it_refuses_a_look_applied_against_a_stale_version_with_409(client, owner, brand, persona, look, moved_on):
    opened, second = moved_on
    before = writes(brand, persona)
    client.force_login(owner)
    url = reverse("persona-apply", args=[brand.slug, persona.pk])

    stale = client.post(url, {"item": look.pk, "expected_version": opened.pk})

    assert stale.status_code == 409 and CONFLICT.format(number=2, user="member") in stale.content.decode()
    assert writes(brand, persona) == before
    current = client.post(url, {"item": look.pk, "expected_version": second.pk})
    assert current.status_code == 302
    persona.refresh_from_db()
    assert (persona.current_version.number, persona.current_version.operation) == (3, "look")


def test_it_refuses_a_rollback_against_a_stale_version_and_says_why(client, owner, brand, persona, moved_on):
    opened, _ = moved_on
    before = writes(brand, persona)
    client.force_login(owner)

    response = client.post(
        reverse("persona-rollback", args=[brand.slug, persona.pk, opened.pk]),
        {"expected_version": opened.pk},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("persona-detail", args=[brand.slug, persona.pk]), 302)]
    content = response.content.decode()
    assert CONFLICT.format(number=2, user="member") in content
    assert "Rolled back" not in content
    assert writes(brand, persona) == before


def test_it_rolls_back_against_the_current_version(client, owner, brand, persona, moved_on):
    opened, second = moved_on
    client.force_login(owner)

    response = client.post(
        reverse("persona-rollback", args=[brand.slug, persona.pk, opened.pk]),
        {"expected_version": second.pk},
        follow=True,
    )

    assert "Rolled back to version 1 as version 3." in response.content.decode()
    persona.refresh_from_db()
    assert (persona.current_version.number, persona.current_version.sha256) == (3, opened.sha256)


def test_it_answers_404_to_outsiders_and_writes_nothing(
    client, outsider, other_brand, brand, persona, direction, look, moved_on
):
    opened, second = moved_on
    before = writes(brand, persona)
    client.force_login(outsider)
    posts = [
        (reverse("persona-edit", args=[brand.slug, persona.pk]), {"direction": direction.pk, "strength": 1.0}),
        (reverse("persona-apply", args=[brand.slug, persona.pk]), {"item": look.pk}),
        (reverse("persona-rollback", args=[brand.slug, persona.pk, opened.pk]), {}),
    ]

    for url, data in posts:
        for expected in (opened, second):
            response = client.post(url, {**data, "expected_version": expected.pk})
            assert response.status_code == 404, (url, expected.number, response.status_code)
            assert b"This persona changed" not in response.content

    assert writes(brand, persona) == before


def test_it_answers_404_to_an_expected_version_of_another_persona(
    client, owner, brand, persona, direction, other_persona, moved_on
):
    before = writes(brand, persona)
    client.force_login(owner)

    response = client.post(
        reverse("persona-edit", args=[brand.slug, persona.pk]),
        {"direction": direction.pk, "strength": 1.0, "expected_version": other_persona.current_version_id},
    )

    assert response.status_code == 404
    assert writes(brand, persona) == before
