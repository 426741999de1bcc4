"""The bundled default model (generation/default_model): what its model card promises holds."""

import json

import pytest

from generation.management.commands.load_default_model import BUNDLED_DIRECTORY
from generation.stylegan import file_sha256, load_generator
from generation.stylegan.training.metrics import (
    MetricOptions,
    class_targets,
    conditioning_accuracy,
    generate,
    load_classifier,
    nearest_other_distance,
)

TRAINING = json.loads((BUNDLED_DIRECTORY / "training.json").read_text())
OUTFIT_FLOOR = 0.85  # chance: 1/6
GESTURE_FLOOR = 0.7  # chance: 1/10


def test_its_weights_are_the_ones_its_model_card_describes():
    sha256 = file_sha256(BUNDLED_DIRECTORY / "weights.safetensors")
    assert sha256 == TRAINING["weights_sha256"]
    card = (BUNDLED_DIRECTORY / "MODEL_CARD.md").read_text()
    assert sha256 in card
    assert "CC0 1.0" in card and f"Training images seen: {TRAINING['images_seen']} " in card
    assert "![samples.png](samples.png)" in card and (BUNDLED_DIRECTORY / "samples.png").is_file()
    assert "![diversity.png](diversity.png)" in card and (BUNDLED_DIRECTORY / "diversity.png").is_file()
    bundle_bytes = sum(p.stat().st_size for p in BUNDLED_DIRECTORY.rglob("*") if p.is_file())
    assert bundle_bytes <= 25 * 2**20


@pytest.mark.parametrize("psi", [1.0, 0.7], ids=["untruncated", "personas-default-truncation"])
def test_it_draws_the_outfit_and_gesture_it_is_asked_for(psi):
    G = load_generator(BUNDLED_DIRECTORY, device="cpu")
    classifier, _ = load_classifier(BUNDLED_DIRECTORY / "classifier")
    targets = class_targets(TRAINING["class_names"], TRAINING["class_attributes"], classifier.vocab)
    classes = [c for c in range(G.config.c_dim) for _ in range(2)]
    seeds = [7_000_000 + i for i in range(len(classes))]
    accuracy, _ = conditioning_accuracy(G, classifier, targets, classes, seeds, psi=psi)
    # MODEL_CARD.md reports outfit 95% and gesture 80.5% on 10 images per class (84% at
    # ψ 0.7); these 2 per class vary by a few points, so the floors sit below that and only
    # a regression fails.
    assert accuracy["outfit"] >= OUTFIT_FLOOR, accuracy
    assert accuracy["gesture"] >= GESTURE_FLOOR, accuracy


def test_it_renders_no_two_seeds_as_near_duplicates():
    G = load_generator(BUNDLED_DIRECTORY, device="cpu")
    cls = TRAINING["class_names"].index("plain_top/hand")
    images = generate(G, [cls] * 16, list(range(16)), psi=0.7)
    assert nearest_other_distance(images).min() > MetricOptions().duplicate_threshold
