"""Our generator against outputs that NVIDIA's own code computed from the same checkpoint
(../shared/fixtures/stylegan2-ada, see its README): z, w, W+, images and PNGs. Without
the fixture these tests fail when CI=true and are skipped, with the reason, elsewhere."""

import contextlib

import numpy as np
import pytest
import torch
from PIL import Image

from generation.stylegan import images_to_uint8, import_stylegan2_pickle, parse_range, seed_to_z, style_mix
from generation.stylegan.ops import use_reference_ops

from .conftest import shared_fixture

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


def test_it_renders_the_reference_images_every_time(reference_generator, reference_pickle, reference_arrays, ops_impl):
    # Deterministic means: the same W+ gives NVIDIA's image on every call, whatever torch's
    # RNG did in between (const noise is the checkpoint's stored noise, not a fresh draw),
    # and from a fresh import of the same file too; comparing a render with itself alone
    # would pass for any image at all.
    ws = reference_arrays("ws_psi0.7")[:3]
    expected = reference_arrays("img_psi0.7")[:3]
    renders = []
    for rng_seed in (0, 1):
        torch.manual_seed(rng_seed)
        renders.append(one_at_a_time(reference_generator.synthesis, ws))
    renders.append(one_at_a_time(import_stylegan2_pickle(reference_pickle).synthesis, ws))
    for img in renders:
        assert_close(img, expected)
    assert all(torch.equal(img, renders[0]) for img in renders[1:]), "the same W+ rendered differently"


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_its_pixels_match_the_reference_pngs(reference_generator, reference_arrays, psi):
    # The PNGs are (img * 127.5 + 128).clamp(0, 255) as uint8; float differences of ~1e-5
    # may flip a rounding, so pixels may differ by 1, and only rarely.
    img = one_at_a_time(reference_generator.synthesis, reference_arrays(f"ws_psi{psi}"))
    ours = images_to_uint8(img).astype(np.int16)
    folder = shared_fixture(f"a_uncond_r32/png_psi{psi}")
    theirs = np.stack([np.asarray(Image.open(folder / f"seed{seed:04d}.png"), dtype=np.int16) for seed in range(8)])
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01, f"{(difference > 0).sum()} pixels differ"


def test_a_missing_fixture_fails_in_ci_and_is_skipped_with_its_reason_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"shared fixture .*no-such-file.npy is missing \(expected"):
        shared_fixture("no-such-file.npy")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"shared fixture .*no-such-file.npy is missing"):
        shared_fixture("no-such-file.npy")
