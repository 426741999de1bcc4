import copy

import numpy as np
import pytest
import torch

from generation.stylegan import (
    class_label,
    parse_range,
    random_generator,
    seed_to_z,
    style_mix,
    truncate,
    validate_wplus,
)


def test_it_parses_ranges():
    assert parse_range("0-3,6") == [0, 1, 2, 3, 6]
    assert parse_range("7") == [7]
    for bad in ("", "a-b", "3-1", "1,,2", "-1"):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_it_refuses_seeds_out_of_range():
    with pytest.raises(ValueError, match="seed must be in"):
        seed_to_z(-1, 8)
    with pytest.raises(ValueError, match="seed must be in"):
        seed_to_z(2**32, 8)


def test_it_validates_class_labels(small_config):
    conditional = type(small_config)(**{**small_config.to_dict(), "c_dim": 4})
    assert class_label(conditional, 2).tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="out of range 0..3"):
        class_label(conditional, 4)
    with pytest.raises(ValueError, match="is conditional"):
        class_label(conditional, None)
    with pytest.raises(ValueError, match="unconditional"):
        class_label(small_config, 1)


def test_it_mixes_only_the_chosen_rows():
    a, b = torch.zeros(1, 6, 4), torch.ones(1, 6, 4)
    mixed = style_mix(a, b, [1, 2])
    assert mixed[0, :, 0].tolist() == [0, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="outside 0..5"):
        style_mix(a, b, [6])


def test_it_truncates_only_up_to_the_cutoff():
    ws, w_avg = torch.ones(1, 4, 2), torch.zeros(2)
    assert truncate(ws, w_avg, 0.5, cutoff=2)[0, :, 0].tolist() == [0.5, 0.5, 1, 1]


def test_it_truncates_a_conditional_latent_towards_its_own_class(small_config):
    config = type(small_config)(**{**small_config.to_dict(), "c_dim": 3, "truncation_centre": "class"})
    G = random_generator(config, seed=0)
    z = torch.stack([seed_to_z(seed, G.config.z_dim) for seed in range(4)])
    c = torch.eye(3)[[0, 0, 2, 2]]
    centres = G.mapping(z, c, truncation_psi=0)[:, 0]
    # Every seed of a class lands on that class's centre, and the classes stay apart.
    torch.testing.assert_close(centres[0], centres[1])
    torch.testing.assert_close(centres[2], centres[3])
    assert (centres[0] - centres[2]).norm() > 0.1 * centres[0].norm()
    # The centre is the mean of w over many seeds of the class, not the global w_avg.
    many = torch.stack([seed_to_z(seed, G.config.z_dim) for seed in range(100, 4100)])
    class_mean = G.mapping(many, torch.eye(3)[[2] * len(many)])[:, 0].mean(dim=0)
    assert (centres[2] - class_mean).norm() < 0.1 * (centres[0] - centres[2]).norm()
    halfway = G.mapping(z, c, truncation_psi=0.5)
    torch.testing.assert_close(halfway, (G.mapping(z, c) + centres[:, None]) / 2)


def test_it_validates_w_plus(small_config):
    good = np.zeros((small_config.num_ws, small_config.w_dim), dtype=np.float32)
    assert validate_wplus(good, small_config) is not None
    with pytest.raises(ValueError, match=r"shape \[6, 32\]"):
        validate_wplus(good[:-1], small_config)
    with pytest.raises(ValueError, match="float32"):
        validate_wplus(good.astype(np.float64), small_config)
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        validate_wplus(bad, small_config)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        validate_wplus(bad, small_config)


def test_noise_modes(small_generator):
    # random_generator leaves noise strengths at zero, as training starts; give them some.
    generator = copy.deepcopy(small_generator)
    for name, param in generator.named_parameters():
        if name.endswith("noise_strength"):
            param.data.fill_(0.5)
    ws = generator.mapping(seed_to_z(0, 32)[None], None)
    with torch.no_grad():
        const = [generator.synthesis(ws, noise_mode="const") for _ in range(2)]
        random = [generator.synthesis(ws, noise_mode="random") for _ in range(2)]
        none = generator.synthesis(ws, noise_mode="none")
        twice = ws.expand(2, -1, -1)
        shared = [generator.synthesis(twice, noise_mode="shared") for _ in range(2)]
        per_image = generator.synthesis(twice, noise_mode="random")
    assert torch.equal(*const)
    assert not torch.equal(random[0], random[1])
    assert torch.equal(shared[0][0], shared[0][1]) and not torch.equal(shared[0], shared[1])
    assert not torch.equal(per_image[0], per_image[1])
    assert not torch.equal(const[0], none) and not torch.equal(random[0], none)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(ws, noise_mode="loud")


def test_it_refuses_latents_of_the_wrong_shape(small_generator):
    with pytest.raises(ValueError, match=r"z must have shape \[N, 32\]"):
        small_generator.mapping(torch.zeros(1, 31), None)
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 6, 32\]"):
        small_generator.synthesis(torch.zeros(1, 7, 32))
