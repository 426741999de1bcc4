"""Directions a brand teaches from personas it labelled (InterFaceGAN on user labels)."""

import numpy as np
import pytest
import torch
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from avatars.services import persona_edit
from generation.models import Direction
from generation.rendering import generator_get
from generation.selectors import directions_for_brand
from generation.services.directions import direction_teach
from generation.stylegan import seed_to_z
from tests.conftest import PASSWORD

POSITIVE, NEGATIVE = [1, 2, 3, 4], [5, 6, 7, 8]


@pytest.fixture
def taught(owner, brand, generator_model):
    return direction_teach(
        actor=owner, brand=brand, model=generator_model, name="smiling", layer_group="coarse",
        positive_seeds=POSITIVE, negative_seeds=NEGATIVE,
    )  # fmt: skip


def projections(model, seeds, vector):
    G = generator_get(model=model, device="cpu")
    with torch.no_grad():
        w = G.mapping(torch.stack([seed_to_z(s, G.config.z_dim) for s in seeds]), None, truncation_psi=0.7)[:, 0]
    return w.numpy() @ vector


def test_it_teaches_a_direction_that_separates_the_labelled_personas(owner, brand, generator_model, taught):
    vector = taught.vector_array()
    assert np.isclose(np.linalg.norm(vector), 1, atol=1e-5)
    assert projections(generator_model, POSITIVE, vector).min() > projections(generator_model, NEGATIVE, vector).max()
    assert (taught.brand, taught.kind, taught.layer_group) == (brand, "interfacegan", "coarse")
    assert taught.strength_min < 0 < taught.strength_max
    event = AuditEvent.objects.get(action="direction.taught")
    assert event.brand == brand and event.after["positive_seeds"] == POSITIVE


def test_it_offers_a_taught_direction_to_its_brand_only(
    brand, other_brand, generator_model, taught, outsider, other_persona
):
    assert taught in directions_for_brand(brand=brand, model=generator_model)
    assert taught not in directions_for_brand(brand=other_brand, model=generator_model)
    with pytest.raises(ValidationError, match="taught by another brand"):
        persona_edit(actor=outsider, brand=other_brand, persona=other_persona, direction=taught, strength=0.1)


def test_another_brand_may_reuse_the_name(brand, outsider, other_brand, generator_model, taught):
    theirs = direction_teach(
        actor=outsider, brand=other_brand, model=generator_model, name="smiling", layer_group="fine",
        positive_seeds=[10, 11, 12], negative_seeds=[13, 14, 15],
    )  # fmt: skip
    mine = directions_for_brand(brand=brand, model=generator_model).get(name="smiling")
    their_view = directions_for_brand(brand=other_brand, model=generator_model).get(name="smiling")
    assert (mine, mine.layer_group) == (taught, "coarse")
    assert (their_view, their_view.layer_group, their_view.brand) == (theirs, "fine", other_brand)
    assert not np.array_equal(mine.vector_array(), their_view.vector_array())


def test_it_caps_the_labelled_seeds_before_any_engine_work(owner, brand, generator_model, monkeypatch):
    import generation.rendering

    def engine_must_not_run(**kwargs):
        raise AssertionError("the engine ran before the labels were checked")

    monkeypatch.setattr(generation.rendering, "direction_from_labelled_seeds", engine_must_not_run)
    too_many = list(range(100, 100 + 65))
    with pytest.raises(ValidationError, match="at most 64 seeds") as error:
        direction_teach(
            actor=owner, brand=brand, model=generator_model, name="lots", layer_group="coarse",
            positive_seeds=too_many, negative_seeds=NEGATIVE,
        )  # fmt: skip
    assert "positive_seeds" in error.value.message_dict
    assert not Direction.objects.unscoped().filter(brand=brand).exists()


def test_the_page_refuses_an_oversized_seed_list(client, owner, brand, generator_model):
    assert client.login(username="owner", password=PASSWORD)
    url = reverse("direction-teach", args=[brand.slug])
    huge = ",".join(str(seed) for seed in range(20_000))
    data = {"model": generator_model.pk, "name": "huge", "layer_group": "coarse", "positive_seeds": huge,
            "negative_seeds": "5,6,7"}  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 200 and "at most" in response.content.decode()
    assert not Direction.objects.unscoped().filter(brand=brand).exists()


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(positive_seeds=[1, 1, 2]), "positive_seeds"),
        (dict(negative_seeds=[3, 9, 10]), "negative_seeds"),
        (dict(layer_group="outfit"), "layer_group"),
        (dict(name="smiling"), "name"),
        (dict(class_index=2), "class_index"),
    ],
)
def test_it_refuses_bad_labels_and_saves_nothing(owner, brand, generator_model, taught, changes, field):
    arguments = dict(name="other", layer_group="coarse", positive_seeds=[1, 2, 3], negative_seeds=[5, 6, 7])
    with pytest.raises(ValidationError) as error:
        direction_teach(actor=owner, brand=brand, model=generator_model, **{**arguments, **changes})
    assert field in error.value.message_dict
    assert Direction.objects.unscoped().filter(brand=brand).count() == 1


def test_a_viewer_cannot_teach(viewer, brand, generator_model):
    with pytest.raises(PermissionDenied):
        direction_teach(
            actor=viewer, brand=brand, model=generator_model, name="x", layer_group="coarse",
            positive_seeds=POSITIVE, negative_seeds=NEGATIVE,
        )  # fmt: skip
    assert not Direction.objects.unscoped().filter(brand=brand).exists()


def test_the_page_teaches_and_shows_form_errors(client, owner, brand, generator_model):
    assert client.login(username="owner", password=PASSWORD)
    url = reverse("direction-teach", args=[brand.slug])
    data = {"model": generator_model.pk, "name": "smiling", "layer_group": "coarse", "positive_seeds": "1, 2, 3",
            "negative_seeds": "5,6,x"}  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 200 and "is not a seed" in response.content.decode()
    response = client.post(url, {**data, "negative_seeds": "5,6,7"})
    assert response.status_code == 302
    assert Direction.objects.unscoped().get(brand=brand).name == "smiling"
