import numpy as np
import pytest
import torch

from generation.stylegan import GeneratorConfig, random_generator
from generation.stylegan.directions import (
    affine_layers_by_row,
    ganspace_directions,
    interfacegan_direction,
    sample_w,
    sefa_directions,
    strength_range,
)


def test_it_maps_every_w_plus_row_to_the_affine_layers_that_read_it(small_generator):
    by_row = affine_layers_by_row(small_generator)
    assert sorted(by_row) == list(range(small_generator.config.num_ws))
    # Row 0: the 4×4 conv; the last row: only the last toRGB.
    assert by_row[0] == [small_generator.synthesis.b4.conv1.affine]
    assert by_row[small_generator.config.num_ws - 1] == [small_generator.synthesis.b16.torgb.affine]


def test_it_finds_sefa_directions_that_change_the_styles_most(small_generator):
    rows = [0, 1, 2]
    directions = sefa_directions(small_generator, rows, k=3)
    assert directions.shape == (3, 32) and np.allclose(np.linalg.norm(directions, axis=1), 1, atol=1e-6)
    layers = [layer for row in rows for layer in affine_layers_by_row(small_generator)[row]]
    stacked = torch.cat([layer.weight / layer.weight.norm(dim=1, keepdim=True) for layer in layers]).detach()

    def gain(v):
        return float((stacked @ torch.from_numpy(v)).norm())

    random = np.random.RandomState(0).randn(20, 32).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    assert gain(directions[0]) >= max(gain(v) for v in random)
    with pytest.raises(ValueError, match="not rows of this generator"):
        sefa_directions(small_generator, [99], k=1)


def test_it_finds_the_principal_components_of_sampled_w(small_generator):
    w = sample_w(small_generator, 400, seed=0)
    components = ganspace_directions(w, k=2)
    first = np.var(w @ components[0])
    assert first >= np.var(w @ components[1]) and first >= max(np.var(w @ np.eye(32)[i]) for i in range(32))


def test_it_fits_a_boundary_between_the_classes_of_a_conditional_model():
    config = GeneratorConfig(
        z_dim=32, w_dim=32, c_dim=3, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=2
    )
    G = random_generator(config, seed=0)
    w0, w1 = sample_w(G, 200, seed=0, class_index=0), sample_w(G, 200, seed=1000, class_index=1)
    direction = interfacegan_direction(np.concatenate([w0, w1]), np.r_[np.zeros(200), np.ones(200)])
    assert abs(np.linalg.norm(direction) - 1) < 1e-6
    accuracy = np.mean(np.r_[w0 @ direction < w1.mean(0) @ direction, w1 @ direction > w0.mean(0) @ direction])
    assert accuracy > 0.9 and (w1 - w0).mean(0) @ direction > 0
    with pytest.raises(ValueError, match="both 0 and 1"):
        interfacegan_direction(w0, np.zeros(200))


def test_it_gives_a_symmetric_strength_range(small_generator):
    direction = sefa_directions(small_generator, [0], k=1)[0]
    low, high = strength_range(sample_w(small_generator, 100, seed=0), direction)
    assert low == -high and high > 0
