"""Our generator against outputs that NVIDIA's own code computed from the same checkpoint."""

import contextlib

import pytest
import torch

from generation.stylegan import parse_range, seed_to_z, style_mix
from generation.stylegan.ops import use_reference_ops

TOLERANCE = 1e-4
IMPLEMENTATIONS = {"fast": contextlib.nullcontext, "reference": use_reference_ops}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def ops_impl(request):
    with IMPLEMENTATIONS[request.param]():
        yield request.param


def one_at_a_time(function, batch: torch.Tensor) -> torch.Tensor:
    """The fixture's arrays were computed at batch size 1."""
    with torch.no_grad():
        return torch.cat([function(batch[i : i + 1]) for i in range(batch.shape[0])])


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    difference = (actual.to(torch.float64) - expected.to(torch.float64)).abs().max().item()
    assert difference <= TOLERANCE, f"max abs difference {difference:.3g} > {TOLERANCE}"


def test_it_reads_the_architecture_from_the_checkpoint(reference_generator):
    config = reference_generator.config
    assert (config.z_dim, config.w_dim, config.c_dim, config.img_resolution) == (512, 512, 0, 32)
    assert [config.channels(r) for r in config.block_resolutions] == [128, 128, 128, 64]
    assert config.num_ws == 8


def test_it_draws_z_from_seeds_like_the_reference(reference_arrays):
    z = reference_arrays("z")
    for seed in range(8):
        assert_close(seed_to_z(seed, 512), z[seed])


def test_it_maps_z_to_w(reference_generator, reference_arrays):
    ws = one_at_a_time(lambda z: reference_generator.mapping(z, None), reference_arrays("z").float())
    assert_close(ws[:, 0], reference_arrays("w"))
    assert_close(reference_generator.mapping.w_avg, reference_arrays("w_avg"))


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_it_truncates_w_plus(reference_generator, reference_arrays, psi):
    z = torch.stack([seed_to_z(seed, 512) for seed in range(8)])
    ws = one_at_a_time(lambda z: reference_generator.mapping(z, None, truncation_psi=psi), z)
    assert_close(ws, reference_arrays(f"ws_psi{psi}"))


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_it_synthesizes_the_reference_images(reference_generator, reference_arrays, ops_impl, psi):
    img = one_at_a_time(reference_generator.synthesis, reference_arrays(f"ws_psi{psi}"))
    assert_close(img, reference_arrays(f"img_psi{psi}"))


def test_it_synthesizes_without_noise(reference_generator, reference_arrays, ops_impl):
    img = one_at_a_time(
        lambda ws: reference_generator.synthesis(ws, noise_mode="none"), reference_arrays("ws_psi1.0")
    )
    assert_close(img, reference_arrays("img_psi1.0_noise_none"))


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_it_mixes_styles_like_the_reference(reference_generator, reference_arrays, ops_impl, psi):
    def wplus(seed):
        return reference_generator.mapping(seed_to_z(seed, 512)[None], None, truncation_psi=psi)

    with torch.no_grad():
        mixed = style_mix(wplus(1), wplus(2), parse_range("0-3"))
        img = reference_generator.synthesis(mixed)
    assert_close(mixed, reference_arrays(f"stylemix_row1_col2_styles0-3_psi{psi}_ws"))
    assert_close(img, reference_arrays(f"stylemix_row1_col2_styles0-3_psi{psi}_img"))


def test_it_gives_the_same_images_in_a_batch(reference_generator, reference_arrays):
    ws = reference_arrays("ws_psi0.7")
    with torch.no_grad():
        assert_close(reference_generator.synthesis(ws), reference_arrays("img_psi0.7"))


def test_it_is_deterministic(reference_generator, reference_arrays):
    ws = reference_arrays("ws_psi0.7")[:2]
    with torch.no_grad():
        assert torch.equal(reference_generator.synthesis(ws), reference_generator.synthesis(ws))
