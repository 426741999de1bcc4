"""Engine work (a forward pass of the mapping network) runs before a service
opens its transaction, so no database lock is held while the engine runs
(with SQLite's IMMEDIATE transactions, that lock blocks every writer)."""

import pytest
from django.db import transaction

import generation.rendering
from avatars.services import library_item_create
from generation.services.directions import direction_teach

# No test-wide transaction around these tests: whether one is open is what they look at.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine_calls(monkeypatch):
    """Calls through to the real engine functions, noting whether each ran inside a transaction."""
    calls = []
    for name in ("latent_from_seed", "direction_from_labelled_seeds"):
        real = getattr(generation.rendering, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append((_name, transaction.get_connection().in_atomic_block))
            return _real(*args, **kwargs)

        monkeypatch.setattr(generation.rendering, name, spy)
    return calls


def test_a_look_from_a_seed_is_mapped_before_the_transaction(owner, brand, generator_model, engine_calls):
    library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Seeded", layer_group="fine", seed=5
    )
    assert engine_calls == [("latent_from_seed", False)]


def test_a_direction_is_fitted_before_the_transaction(owner, brand, generator_model, engine_calls):
    direction_teach(
        actor=owner, brand=brand, model=generator_model, name="bright", layer_group="coarse",
        positive_seeds=[1, 2, 3], negative_seeds=[4, 5, 6],
    )  # fmt: skip
    assert engine_calls == [("direction_from_labelled_seeds", False)]


def test_a_model_registered_before_its_centres_is_calibrated_before_the_transaction(
    owner, brand, persona, generator_model, monkeypatch
):
    """Models registered before migration 0009 are calibrated on first use,
    outside the change's transaction and its row locks."""
    from avatars.services import persona_rollback

    generation_model = type(generator_model)
    generation_model.objects.filter(pk=generator_model.pk).update(identity_centres=b"", identity_centre_distance=0)
    persona.refresh_from_db()
    persona.model.refresh_from_db()
    calls = []
    real = generation.rendering.identity_calibrate

    def spy(*, model):
        calls.append(transaction.get_connection().in_atomic_block)
        return real(model=model)

    monkeypatch.setattr(generation.rendering, "identity_calibrate", spy)
    persona_rollback(actor=owner, brand=brand, persona=persona, version=persona.current_version)
    assert calls == [False]
    generator_model.refresh_from_db()
    assert generator_model.identity_calibrated
