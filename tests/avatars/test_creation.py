import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from avatars.models import LibraryItem, Persona, PersonaVersion
from avatars.services import (
    library_item_create,
    persona_breed,
    persona_candidates_render,
    persona_create_from_seed,
    persona_edit,
    persona_library_apply,
)
from brands.models import Role
from brands.services import layer_group_permission_set
from generation.models import Direction
from generation.services.directions import directions_compute
from generation.services.registry import generator_model_register


@pytest.fixture
def directions(generator_model):
    directions_compute(model_id=generator_model.pk)
    return {d.name: d for d in generator_model.directions.model_wide().all()}


@pytest.fixture
def second(owner, brand, generator_model):
    return persona_create_from_seed(actor=owner, brand=brand, model=generator_model, seed=3, name="Bea", handle="bea")


def versions(brand):
    return PersonaVersion.objects.for_brand(brand).count()


def test_it_renders_a_grid_of_candidate_seeds(owner, brand, generator_model):
    grid = persona_candidates_render(
        actor=owner, brand=brand, model=generator_model, first_seed=10, count=4, truncation_psi=0.7
    )
    assert [seed for seed, _ in grid] == [10, 11, 12, 13]
    assert all(png.startswith(b"\x89PNG") for _, png in grid) and grid[0][1] != grid[1][1]


@pytest.mark.parametrize(
    "changes, message", [({"count": 17}, "1 to 16 candidates"), ({"first_seed": 2**32 - 2}, "Seed must be")]
)
def test_it_refuses_bad_grids(owner, brand, generator_model, changes, message):
    with pytest.raises(ValidationError, match=message):
        persona_candidates_render(
            actor=owner,
            brand=brand,
            model=generator_model,
            **{"first_seed": 0, "count": 4, "truncation_psi": 0.7, **changes},
        )


def test_it_breeds_two_personas_by_layer_group(owner, brand, persona, second):
    child = persona_breed(
        actor=owner, brand=brand, base=persona, donor=second, layer_groups=["fine"], name="C", handle="c"
    )
    latent = child.latent_array()
    assert np.array_equal(latent[:8], persona.latent_array()[:8]) and np.array_equal(
        latent[8:], second.latent_array()[8:]
    )
    version = child.current_version
    assert version.operation == "mix" and version.params["donor"]["persona"] == "bea"


def test_it_refuses_to_breed_with_another_brands_persona_or_an_unknown_group(
    owner, brand, persona, second, other_persona
):
    with pytest.raises(ValidationError, match="does not belong to brand acme"):
        persona_breed(
            actor=owner, brand=brand, base=persona, donor=other_persona, layer_groups=["fine"], name="C", handle="c"
        )
    with pytest.raises(ValidationError, match="Unknown layer group 'outfit'; this model has: coarse, middle, fine"):
        persona_breed(
            actor=owner, brand=brand, base=persona, donor=second, layer_groups=["outfit"], name="C", handle="c"
        )
    assert Persona.objects.for_brand(brand).count() == 2


def test_it_edits_along_a_direction_on_its_layer_group_only(owner, brand, persona, directions):
    direction = directions["coarse-sefa-0"]
    strength = direction.strength_max / 2
    version = persona_edit(actor=owner, brand=brand, persona=persona, direction=direction, strength=strength)
    before, after = version.parent.latent_array(), version.latent_array()
    assert np.array_equal(before[4:], after[4:])
    np.testing.assert_allclose(
        after[:4] - before[:4], strength * direction.vector_array()[None].repeat(4, 0), atol=1e-4
    )
    assert (version.operation, version.params["direction"]) == ("edit", "coarse-sefa-0")


def test_it_refuses_bad_edits_and_saves_nothing(owner, brand, persona, directions, checkpoint_dir):
    direction = directions["coarse-sefa-0"]
    with pytest.raises(ValidationError, match="Strength for coarse-sefa-0 must be within"):
        persona_edit(
            actor=owner, brand=brand, persona=persona, direction=direction, strength=direction.strength_max * 2
        )
    other_model = generator_model_register(
        actor=None, name="Other", slug="other-model", directory=str(checkpoint_dir), licence_note="x"
    )
    foreign = Direction.objects.create(
        model=other_model,
        name="x",
        kind="sefa",
        layer_group="coarse",
        vector=direction.vector,
        strength_min=-1,
        strength_max=1,
    )
    with pytest.raises(ValidationError, match="belongs to model other-model, not test-placeholder"):
        persona_edit(actor=owner, brand=brand, persona=persona, direction=foreign, strength=0.5)
    assert versions(brand) == 1


def test_it_keeps_identity_rows_bit_identical_through_looks_and_poses(owner, brand, persona, second, directions):
    identity = persona.model.identity_rows
    reference = persona.latent_array()[identity].tobytes()
    looks = [
        library_item_create(
            actor=owner, brand=brand, model=persona.model, kind="look", name="seed 5", layer_group="fine", seed=5
        ),
        library_item_create(
            actor=owner,
            brand=brand,
            model=persona.model,
            kind="look",
            name="like bea",
            layer_group="fine",
            source_version=second.current_version,
        ),
    ]
    poses = [
        library_item_create(
            actor=owner,
            brand=brand,
            model=persona.model,
            kind="pose",
            name=f"turn {sign}",
            layer_group="coarse",
            direction=directions["coarse-pca-0"],
            strength=sign * directions["coarse-pca-0"].strength_max / 2,
        )
        for sign in (-1, 1)
    ] + [
        library_item_create(
            actor=owner, brand=brand, model=persona.model, kind="pose", name="seed 9", layer_group="coarse", seed=9
        )
    ]
    seen = set()
    for look in looks:
        for pose in poses:
            persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
            version = persona_library_apply(actor=owner, brand=brand, persona=persona, item=pose)
            assert version.latent_array()[identity].tobytes() == reference
            seen.add(version.sha256)
    assert len(seen) == len(looks) * len(poses)


def test_it_refuses_looks_on_the_identity_group_and_items_of_other_models(owner, brand, persona, directions):
    with pytest.raises(ValidationError, match="'middle' is model test-placeholder's identity group"):
        library_item_create(
            actor=owner, brand=brand, model=persona.model, kind="look", name="x", layer_group="middle", seed=1
        )
    with pytest.raises(ValidationError, match="acts on 'coarse', not 'fine'"):
        library_item_create(
            actor=owner,
            brand=brand,
            model=persona.model,
            kind="pose",
            name="x",
            layer_group="fine",
            direction=directions["coarse-pca-0"],
            strength=0.1,
        )
    with pytest.raises(ValidationError, match="exactly one source"):
        library_item_create(actor=owner, brand=brand, model=persona.model, kind="look", name="x", layer_group="fine")
    assert not LibraryItem.objects.for_brand(brand).exists()


def test_it_limits_creators_to_the_layer_groups_the_brand_allows(
    owner, member, brand, persona, directions, generator_model
):
    layer_group_permission_set(actor=owner, brand=brand, role=Role.CREATOR, layer_groups=["fine"])
    look = library_item_create(
        actor=member, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=5
    )
    persona_library_apply(actor=member, brand=brand, persona=persona, item=look)
    pose = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="pose", name="p", layer_group="coarse", seed=6
    )
    with pytest.raises(
        ValidationError,
        match="Layer-group permission: on brand acme, your role may change only fine; this change touches coarse",
    ):
        persona_library_apply(actor=member, brand=brand, persona=persona, item=pose)
    with pytest.raises(ValidationError, match="Layer-group permission"):
        persona_create_from_seed(actor=member, brand=brand, model=generator_model, seed=1, name="N", handle="n")
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=pose)
    assert versions(brand) == 3
    with pytest.raises(PermissionDenied):
        layer_group_permission_set(actor=member, brand=brand, role=Role.CREATOR, layer_groups=None)
