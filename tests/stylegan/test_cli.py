"""The operators' command line, run as operators run it: in a subprocess."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import shared_fixture

ROOT = Path(__file__).resolve().parents[2]


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generation.stylegan", *map(str, args)], cwd=ROOT, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def imported_model(reference_pickle, tmp_path_factory):
    destination = tmp_path_factory.mktemp("model")
    result = engine("import", reference_pickle, destination)
    assert result.returncode == 0, result.stderr
    assert "sha256=" in result.stdout
    return destination


def test_it_renders_the_reference_seeds(imported_model, reference_arrays, tmp_path):
    result = engine(
        "render", imported_model, "--seeds", "0-7", "--psi", "0.7", "--out", tmp_path / "out.npz", "--png", tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = np.load(tmp_path / "out.npz")
    assert out["ws"].dtype == out["img"].dtype == np.float32
    assert np.abs(out["ws"] - reference_arrays("ws_psi0.7").numpy()).max() <= 1e-4
    assert np.abs(out["img"] - reference_arrays("img_psi0.7").numpy()).max() <= 1e-4
    fixture_png = shared_fixture("a_uncond_r32/png_psi0.7")
    for seed in range(8):
        ours = np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png"), dtype=np.int16)
        theirs = np.asarray(Image.open(fixture_png / f"seed{seed:04d}.png"), dtype=np.int16)
        assert np.abs(ours - theirs).max() <= 1


def test_it_renders_style_mixes_and_no_noise(imported_model, reference_arrays, tmp_path):
    result = engine(
        "render", imported_model, "--seeds", "1", "--mix-seed", "2", "--mix-layers", "0-3", "--out", tmp_path / "m.npz"
    )
    assert result.returncode == 0, result.stderr
    expected = reference_arrays("stylemix_row1_col2_styles0-3_psi1.0_img").numpy()
    assert np.abs(np.load(tmp_path / "m.npz")["img"] - expected).max() <= 1e-4
    result = engine("render", imported_model, "--seeds", "0-7", "--noise-mode", "none", "--out", tmp_path / "n.npz")
    assert result.returncode == 0, result.stderr
    assert np.abs(np.load(tmp_path / "n.npz")["img"] - reference_arrays("img_psi1.0_noise_none").numpy()).max() <= 1e-4


@pytest.mark.parametrize(
    "args,message",
    [
        (["render", "{model}", "--seeds", "x", "--out", "o.npz"], "not a range of whole numbers"),
        (["render", "{model}", "--seeds", "1", "--out", "o.npz", "--class", "3"], "unconditional"),
        (["render", "{model}", "--seeds", "1", "--mix-seed", "2", "--out", "o.npz"], "go together"),
        (
            ["render", "{model}", "--seeds", "1", "--mix-seed", "2", "--mix-layers", "9", "--out", "o.npz"],
            "outside 0..7",
        ),
        (["render", "/nonexistent", "--seeds", "1", "--out", "o.npz"], "config not found"),
        (["render", "{model}", "--seeds", "1", "--noise-mode", "loud", "--out", "o.npz"], "invalid choice"),
        (["import", "/nonexistent.pkl", "out"], "checkpoint not found"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(imported_model, tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "generation.stylegan", *(a.format(model=imported_model) for a in args)],
        cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "o.npz").exists()
