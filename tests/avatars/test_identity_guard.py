import re

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
from generation.models import GeneratorModel
from generation.services.directions import directions_compute

GUARD = "Identity guard: on model test-placeholder, a persona's identity layers \\(middle\\) must be at least"


def test_it_calibrates_a_minimum_distance_between_random_personas(generator_model, persona, other_persona):
    minimum = generator_model.identity_min_distance
    assert minimum > 0 and generator_model.identity_basis_array().shape == (64, 512)
    strangers = np.linalg.norm(
        identity_embedding(persona.latent_array(), generator_model)
        - identity_embedding(other_persona.latent_array(), generator_model)
    )
    assert strangers > minimum


def test_it_refuses_another_brands_face_and_saves_nothing(persona, outsider, other_brand, generator_model):
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match=GUARD):
        persona_create_from_seed(
            actor=outsider, brand=other_brand, model=generator_model, seed=42, name="Copy", handle="copy"
        )
    assert not Persona.objects.for_brand(other_brand).exists()
    assert not PersonaVersion.objects.for_brand(other_brand).exists()
    assert AuditEvent.objects.count() == events


def test_it_lets_a_brand_reuse_its_own_face(persona, owner, brand, generator_model):
    twin = persona_create_from_seed(
        actor=owner, brand=brand, model=generator_model, seed=42, name="Twin", handle="twin"
    )
    assert twin.latent_sha256 == persona.latent_sha256


def test_it_records_a_fingerprint_only_when_the_identity_changes(persona, owner, brand, generator_model):
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=3
    )
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    assert IdentityFingerprint.objects.for_brand(brand).count() == 1


def test_it_refuses_an_edit_of_the_identity_layers_that_comes_too_close(
    persona, other_persona, owner, brand, generator_model
):
    directions_compute(model_id=generator_model.pk)
    direction = generator_model.directions.model_wide().get(name="middle-sefa-0")
    # Make the rule strict enough that any identity would collide with other_persona's.
    generator_model.identity_min_distance = 1e6
    generator_model.save(update_fields=["identity_min_distance"])
    with pytest.raises(ValidationError, match="Identity guard"):
        persona_edit(
            actor=owner, brand=brand, persona=persona, direction=direction, strength=direction.strength_max / 2
        )
    assert PersonaVersion.objects.for_brand(brand).count() == 1
    # Looks leave the identity alone, so the guard does not stand in their way.
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=3
    )
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)


def test_it_sees_personas_stored_after_its_index_was_built(persona, outsider, other_brand, generator_model):
    latent = persona.latent_array().copy()
    latent[generator_model.identity_rows] += 100.0
    identity_guard_check(brand=other_brand, model=generator_model, latent=latent)  # builds the index
    persona_create(actor=outsider, brand=other_brand, model=generator_model, latent=latent, name="Far", handle="far")
    with pytest.raises(ValidationError, match=GUARD):
        identity_guard_check(brand=persona.brand, model=generator_model, latent=latent)


def _create(actor, brand, model, seed, psi, handle):
    return persona_create_from_seed(
        actor=actor, brand=brand, model=model, seed=seed, name=handle, handle=handle, truncation_psi=psi
    )


def test_it_refuses_without_saying_how_close_nor_whose(persona, outsider, other_brand, brand, generator_model):
    from generation.rendering import latent_from_seed

    near = latent_from_seed(model=generator_model, seed=42, truncation_psi=0.66)
    distance = float(
        np.linalg.norm(
            identity_embedding(near, generator_model) - identity_embedding(persona.latent_array(), generator_model)
        )
    )
    assert 0 < distance < generator_model.identity_min_distance / 2
    with pytest.raises(ValidationError) as refused:
        persona_create(
            actor=outsider, brand=other_brand, model=generator_model, latent=near, name="Copy", handle="copy"
        )
    message = " ".join(refused.value.messages)
    assert "This face is too close to a persona another brand already owns on this model" in message
    assert not re.search(r"\d", message), message  # no distance, no minimum, no id
    for secret in (brand.name, brand.slug, persona.name, persona.handle, f"{distance:.3g}"):
        assert secret.lower() not in message.lower()


def test_it_refuses_the_average_face_so_nobody_can_squat_the_centre(
    owner, brand, outsider, other_brand, generator_model
):
    events = AuditEvent.objects.count()
    for psi in (0.0, 0.05):
        with pytest.raises(ValidationError, match="This face is too close to the average face to be owned; raise ψ"):
            _create(owner, brand, generator_model, 6, psi, f"centre{int(psi * 100)}")
    assert not Persona.objects.for_brand(brand).exists() and AuditEvent.objects.count() == events
    # Nobody owns it: the other brand is refused just the same, whatever the seed.
    for seed in (6, 999, 123456):
        with pytest.raises(ValidationError, match="too close to the average face"):
            _create(outsider, other_brand, generator_model, seed, 0.0, f"b{seed}")
    # Low-ψ faces that are not the average face are ownable, and one brand's does not
    # block the other brand's: distances shrink with ψ, and so does the guard's.
    _create(owner, brand, generator_model, 6, 0.2, "six")
    for seed, psi in ((7, 0.2), (123456, 0.2), (7, 0.3), (999, 0.7)):
        _create(outsider, other_brand, generator_model, seed, psi, f"b{seed}-{int(psi * 100)}")
    # ...while the same face is still the first brand's.
    with pytest.raises(ValidationError, match="another brand already owns"):
        _create(outsider, other_brand, generator_model, 6, 0.2, "copy")


def test_it_lets_normal_seeds_of_two_brands_coexist_and_blocks_a_near_copy(
    persona, owner, brand, outsider, other_brand, generator_model
):
    for seed in (6, 999, 123456):
        _create(outsider, other_brand, generator_model, seed, 0.7, f"b{seed}")
        _create(owner, brand, generator_model, seed + 1, 0.7, f"a{seed}")
    latent = persona.latent_array().copy()
    noise = np.random.default_rng(0).standard_normal(latent.shape[1]).astype(np.float32)
    latent[generator_model.identity_rows] += 0.1 * generator_model.identity_min_distance * noise / np.linalg.norm(noise)
    with pytest.raises(ValidationError, match="another brand already owns"):
        persona_create(actor=outsider, brand=other_brand, model=generator_model, latent=latent, name="N", handle="n")


def test_it_scales_the_distance_with_truncation_so_low_psi_faces_do_not_crowd(
    owner, brand, outsider, other_brand, generator_model
):
    from generation.rendering import latent_from_seed

    def identity(seed, psi):
        return identity_embedding(
            latent_from_seed(model=generator_model, seed=seed, truncation_psi=psi), generator_model
        )

    # A crowded model: seeds 42 and 7 at ψ 0.7 are only just far enough apart. At ψ 0.35
    # they are half as far apart, as every pair is, so a fixed distance would refuse them.
    apart = float(np.linalg.norm(identity(42, 0.7) - identity(7, 0.7)))
    generator_model.identity_min_distance = 0.95 * apart
    generator_model.save(update_fields=["identity_min_distance"])
    assert np.linalg.norm(identity(42, 0.35) - identity(7, 0.35)) < generator_model.identity_min_distance
    for psi in (0.35, 0.7):
        _create(owner, brand, generator_model, 42, psi, f"a{int(psi * 100)}")
        _create(outsider, other_brand, generator_model, 7, psi, f"b{int(psi * 100)}")
    with pytest.raises(ValidationError, match="another brand already owns"):
        _create(outsider, other_brand, generator_model, 42, 0.33, "copy")


def test_it_calibrates_the_centres_of_a_model_registered_before_it_stored_them(outsider, other_brand, generator_model):
    centres, distance = generator_model.identity_centres, generator_model.identity_centre_distance
    assert distance > 0 and np.frombuffer(centres, "<f4").shape == (generator_model.w_dim,)
    GeneratorModel.objects.filter(pk=generator_model.pk).update(identity_centres=b"", identity_centre_distance=0.0)
    model = GeneratorModel.objects.get(pk=generator_model.pk)
    with pytest.raises(ValidationError, match="too close to the average face"):
        _create(outsider, other_brand, model, 6, 0.0, "centre")
    _create(outsider, other_brand, model, 6, 0.7, "six")
    model.refresh_from_db()
    assert bytes(model.identity_centres) == bytes(centres) and model.identity_centre_distance == distance
