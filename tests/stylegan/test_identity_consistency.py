import numpy as np
import pytest

from generation.stylegan.identity import PixelStructureIdentity, identity_similarity


def identity_consistency(image, reference):
    """The pixel fallback's similarity (models that ship no identity embedding)."""
    return identity_similarity(PixelStructureIdentity(), image, reference)


def test_it_scores_an_image_against_itself_as_one_and_noise_near_zero():
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, (128, 128, 3)).astype(np.uint8)
    other = rng.randint(0, 256, (128, 128, 3)).astype(np.uint8)
    assert identity_consistency(image, image) == pytest.approx(1.0)
    assert identity_consistency(image, other) < 0.1


def test_it_ignores_changes_below_its_scale_and_of_brightness():
    rng = np.random.RandomState(1)
    structure = np.kron(rng.randint(0, 200, (16, 16, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 128 px
    texture = (structure + rng.randint(0, 2, structure.shape)).astype(np.uint8)
    brighter = np.clip(structure.astype(int) + 40, 0, 255).astype(np.uint8)
    assert identity_consistency(texture, structure) > 0.99
    assert identity_consistency(brighter, structure) > 0.95


def test_it_refuses_images_it_cannot_compare():
    with pytest.raises(ValueError, match="cannot compare images of shapes"):
        identity_consistency(np.zeros((8, 8, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    flat = np.full((8, 8, 3), 7, np.uint8)
    assert identity_consistency(flat, flat) == 0.0  # no structure: nothing to recognise
