import numpy as np
import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from avatars.identity import identity_embedding, identity_guard_check
from avatars.models import IdentityFingerprint, Persona, PersonaVersion
from avatars.services import (
    library_item_create,
    persona_create,
    persona_create_from_seed,
    persona_edit,
    persona_library_apply,
)
from generation.services.directions import directions_compute

GUARD = "Identity guard: on model test-placeholder, a persona's identity layers \\(middle\\) must be at least"


def test_it_calibrates_a_minimum_distance_between_random_personas(generator_model, persona, other_persona):
    minimum = generator_model.identity_min_distance
    assert minimum > 0 and generator_model.identity_basis_array().shape == (64, 512)
    strangers = np.linalg.norm(identity_embedding(persona.latent_array(), generator_model)
                               - identity_embedding(other_persona.latent_array(), generator_model))
    assert strangers > minimum


def test_it_refuses_another_brands_face_and_saves_nothing(persona, outsider, other_brand, generator_model):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match=GUARD):
        persona_create_from_seed(actor=outsider, brand=other_brand, model=generator_model, seed=42, name="Copy", handle="copy")
    assert not Persona.objects.for_brand(other_brand).exists()
    assert not PersonaVersion.objects.for_brand(other_brand).exists()
    assert AuditEvent.objects.count() == events


def test_it_lets_a_brand_reuse_its_own_face(persona, owner, brand, generator_model):
    twin = persona_create_from_seed(actor=owner, brand=brand, model=generator_model, seed=42, name="Twin", handle="twin")
    assert twin.latent_sha256 == persona.latent_sha256


def test_it_records_a_fingerprint_only_when_the_identity_changes(persona, owner, brand, generator_model):
    look = library_item_create(actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=3)
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    assert IdentityFingerprint.objects.for_brand(brand).count() == 1


def test_it_refuses_an_edit_of_the_identity_layers_that_comes_too_close(persona, other_persona, owner, brand, generator_model):
    directions_compute(model_id=generator_model.pk)
    direction = generator_model.directions.model_wide().get(name="middle-sefa-0")
    # Make the rule strict enough that any identity would collide with other_persona's.
    generator_model.identity_min_distance = 1e6
    generator_model.save(update_fields=["identity_min_distance"])
    with pytest.raises(ValidationError, match="Identity guard"):
        persona_edit(actor=owner, brand=brand, persona=persona, direction=direction, strength=direction.strength_max / 2)
    assert PersonaVersion.objects.for_brand(brand).count() == 1
    # Looks leave the identity alone, so the guard does not stand in their way.
    look = library_item_create(actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=3)
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)


def test_it_sees_personas_stored_after_its_index_was_built(persona, outsider, other_brand, generator_model):
    latent = persona.latent_array().copy()
    latent[generator_model.identity_rows] += 100.0
    identity_guard_check(brand=other_brand, model=generator_model, latent=latent)  # builds the index
    persona_create(actor=outsider, brand=other_brand, model=generator_model, latent=latent, name="Far", handle="far")
    with pytest.raises(ValidationError, match=GUARD):
        identity_guard_check(brand=persona.brand, model=generator_model, latent=latent)
