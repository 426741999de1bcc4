"""The identity embedding: trained on same-person DiceBear renders, shipped with the default model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.stylegan.identity import (
    IDENTITY_DIR,
    IdentityNetwork,
    LearnedIdentity,
    PixelStructureIdentity,
    identity_similarity,
    load_identity_measure,
    load_learned_identity,
)
from generation.stylegan.training.identity_embedding import (
    best_threshold,
    embed_people,
    render_people,
    supervised_contrastive_loss,
    train_identity_network,
    verification_report,
)

BUNDLED = Path(__file__).resolve().parents[2] / "generation" / "default_model"


@pytest.fixture(scope="module")
def strangers():
    """People the bundled embedding never saw (its held-out namespace is another), 3 outfits/gestures each."""
    return render_people(60, 3, namespace="identity-test")


def test_the_bundled_embedding_verifies_unseen_people_at_its_threshold(strangers):
    measure = load_identity_measure(BUNDLED)
    assert isinstance(measure, LearnedIdentity)
    report = verification_report(embed_people(measure.network, strangers))
    threshold = measure.calibration.threshold
    accepted = (report.same >= threshold).mean()
    rejected = (report.different < threshold).mean()
    assert (accepted + rejected) / 2 >= 0.95
    assert np.median(report.same) > measure.calibration.threshold > np.median(report.different)


def test_the_bundled_embedding_is_invariant_to_outfit_and_gesture_not_to_the_person(strangers):
    measure = load_identity_measure(BUNDLED)
    images = strangers.permute(0, 1, 3, 4, 2).numpy()  # [P, V, R, R, C]
    same = identity_similarity(measure, images[0, 0], images[0, 1])
    other = identity_similarity(measure, images[0, 0], images[1, 1])
    assert same > measure.calibration.threshold > other


def test_the_bundled_embedding_is_size_bounded_and_records_its_calibration():
    directory = BUNDLED / IDENTITY_DIR
    assert sum(f.stat().st_size for f in directory.iterdir()) < 4 * 2**20
    meta = json.loads((directory / "identity.json").read_text())
    assert meta["heldout"]["verification_accuracy"] >= 0.95
    assert meta["same_person_median"] > meta["threshold"] > meta["different_person_median"]
    assert meta["duplicate_threshold"] >= meta["threshold"]


def test_models_without_an_embedding_fall_back_to_pixel_structure(tmp_path):
    measure = load_identity_measure(tmp_path)
    assert isinstance(measure, PixelStructureIdentity)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert identity_similarity(measure, image, image) == pytest.approx(1.0)
    assert identity_similarity(measure, image, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) < 0.1


def test_it_refuses_to_compare_images_of_different_shapes():
    with pytest.raises(ValueError, match="cannot compare"):
        identity_similarity(PixelStructureIdentity(), np.zeros((8, 8, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))


def test_the_contrastive_loss_pulls_views_of_one_person_together():
    person = torch.tensor([0, 0, 1, 1])
    together = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1], [0.01, 1]]), dim=1)
    apart = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1], [1, 0.01], [0.01, 1]]), dim=1)
    assert supervised_contrastive_loss(together, person, 0.1) < supervised_contrastive_loss(apart, person, 0.1)


def test_the_best_threshold_separates_two_distributions():
    threshold, accuracy = best_threshold(np.array([0.9, 0.95, 0.97]), np.array([0.1, 0.2, 0.5]))
    assert 0.5 < threshold < 0.9 and accuracy == 1.0


def test_a_trained_network_saves_and_loads_with_its_calibration(tmp_path):
    people = render_people(8, 2, namespace="identity-unit", size=32)
    network = train_identity_network(people, steps=2, people_per_batch=4)
    report = verification_report(embed_people(network, people))
    LearnedIdentity(network, report.calibration(), {"steps": 2}).save(tmp_path / "identity")
    loaded = load_learned_identity(tmp_path / "identity")
    assert loaded.calibration == report.calibration()
    assert isinstance(loaded.network, IdentityNetwork) and loaded.info["steps"] == 2
    x = torch.zeros(1, 3, 32, 32)
    assert torch.allclose(loaded.network(x), network(x))
