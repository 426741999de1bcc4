import numpy as np
import pytest
import torch
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from audit.models import AuditEvent
from avatars.models import Persona, PersonaVersion
from avatars.selectors import persona_get, personas_for_brand
from avatars.services import persona_create, persona_create_from_seed
from generation.stylegan import load_generator, seed_to_z


def test_it_creates_a_persona_with_the_engines_w_plus_for_the_seed(persona, generator_model):
    G = load_generator(generator_model.path)
    with torch.no_grad():
        expected = G.mapping(seed_to_z(42, G.config.z_dim)[None], None, truncation_psi=0.7)[0].numpy()
    latent = persona.latent_array()
    assert latent.shape == (generator_model.num_ws, generator_model.w_dim) == (10, 512)
    np.testing.assert_allclose(latent, expected, rtol=0, atol=1e-6)


def test_it_reloads_the_same_latent_from_the_database(persona, brand):
    stored = Persona.objects.for_brand(brand).get(pk=persona.pk)
    assert np.array_equal(stored.latent_array(), persona.latent_array())
    assert stored.latent_sha256 == persona.latent_sha256


def test_it_audits_persona_creation(persona, brand, owner):
    event = AuditEvent.objects.for_brand(brand).get(action="persona.created")
    assert event.actor == owner
    assert event.after["seed"] == 42 and event.after["latent_sha256"] == persona.latent_sha256


def test_it_lets_creators_create_personas(member, brand, generator_model):
    persona = persona_create_from_seed(
        actor=member, brand=brand, model=generator_model, seed=1, name="Bo", handle="bo", truncation_psi=1.0
    )
    assert persona.created_by == member


def test_it_refuses_viewers_and_outsiders(viewer, outsider, brand, generator_model):
    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            persona_create_from_seed(
                actor=user, brand=brand, model=generator_model, seed=1, name="Bo", handle="bo", truncation_psi=0.7
            )
    assert not Persona.objects.for_brand(brand).exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seed": -1}, "Seed must be an integer from 0 to 4294967295"),
        ({"seed": 2**32}, "Seed must be an integer"),
        ({"truncation_psi": 1.5}, r"Truncation psi must be within \[0.0, 1.0\]"),
        ({"handle": "not a slug"}, "slug"),
        ({"handle": "ava"}, "already has a persona with the handle @ava"),
    ],
)
def test_it_refuses_bad_input_before_saving(persona, owner, brand, generator_model, changes, message):
    arguments = {"seed": 3, "name": "Cy", "handle": "cy", "truncation_psi": 0.5, **changes}
    with pytest.raises(ValidationError, match=message):
        persona_create_from_seed(actor=owner, brand=brand, model=generator_model, **arguments)
    assert Persona.objects.for_brand(brand).count() == 1


@pytest.mark.parametrize(
    "latent, message",
    [
        (np.zeros((9, 512), np.float32), "must have shape"),
        (np.zeros((10, 512), np.float64), "must be float32"),
        (np.full((10, 512), np.nan, np.float32), "5120 NaN or infinite"),
        (np.full((10, 512), np.inf, np.float32), "NaN or infinite"),
    ],
    ids=["shape", "dtype", "nan", "inf"],
)
def test_it_refuses_invalid_latents_before_anything_is_saved(owner, brand, generator_model, latent, message):
    events_before = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match=message):
        persona_create(
            actor=owner, brand=brand, model=generator_model, latent=latent, name="X", handle="x"
        )
    assert not Persona.objects.for_brand(brand).exists()
    assert AuditEvent.objects.count() == events_before


def test_it_validates_a_versions_stored_latent_on_save(persona):
    version = PersonaVersion(brand=persona.brand, persona=persona, number=2, operation="edit", num_ws=10, w_dim=512)
    version.latent = np.full((10, 512), np.nan, np.float32).tobytes()
    with pytest.raises(ValidationError, match="NaN"):
        version.save()
    version.latent = b"\0" * 12
    with pytest.raises(ValidationError, match="bytes"):
        version.save()


def test_it_finds_a_persona_only_through_its_brand(persona, other_persona, brand):
    assert persona_get(brand=brand, persona_id=persona.pk) == persona
    assert list(personas_for_brand(brand=brand)) == [persona]
    with pytest.raises(Http404):
        persona_get(brand=brand, persona_id=other_persona.pk)
