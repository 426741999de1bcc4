"""The truncation centre is a property of the model: imported NVIDIA checkpoints truncate
towards the global w_avg as NVIDIA's generate.py does; models trained here (the bundled
default among them) towards their class's centre."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.stylegan import (
    GeneratorConfig,
    import_stylegan2_pickle,
    load_generator,
    random_generator,
    save_generator,
    seed_to_z,
    truncate,
)

from .nvidia_format import generator_record, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "generation" / "default_model"
CONDITIONAL = GeneratorConfig(
    z_dim=16, w_dim=16, c_dim=3, img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2,
    truncation_centre="class",
)  # fmt: skip


def nvidia_truncation(w_avg: torch.Tensor, ws: torch.Tensor, psi: float) -> torch.Tensor:
    """NVIDIA's MappingNetwork: x = self.w_avg.lerp(x, truncation_psi), i.e. w_avg + psi (w - w_avg)."""
    return w_avg.lerp(ws, psi)


@pytest.fixture(scope="module")
def conditional_pickle(tmp_path_factory):
    """An NVIDIA-format .pkl of a conditional generator whose w_avg is not zero."""
    G = random_generator(CONDITIONAL, seed=11)
    G.mapping.w_avg.copy_(torch.randn(CONDITIONAL.w_dim, generator=torch.Generator().manual_seed(5)))
    return write_checkpoint(tmp_path_factory.mktemp("pkl") / "conditional.pkl", {"G_ema": generator_record(G)})


def latents(config, classes=(0, 1, 2, 2)):
    z = torch.stack([seed_to_z(seed, config.z_dim) for seed in range(len(classes))])
    return z, torch.eye(config.c_dim)[list(classes)]


def test_an_imported_conditional_checkpoint_truncates_towards_w_avg_like_nvidia(conditional_pickle, tmp_path):
    G = import_stylegan2_pickle(conditional_pickle)
    assert G.truncation_centre == G.config.truncation_centre == "global"
    save_generator(G, tmp_path / "imported")
    assert json.loads((tmp_path / "imported" / "config.json").read_text())["generator"]["truncation_centre"] == "global"
    loaded = load_generator(tmp_path / "imported")
    assert loaded.truncation_centre == "global"

    z, c = latents(G.config)
    w_avg = G.mapping.w_avg
    assert w_avg.abs().max() > 0.1
    with torch.no_grad():
        ws = G.mapping(z, c)
        for model in (G, loaded):
            for psi in (0.7, 0.5, 0.0):
                truncated = model.mapping(z, c, truncation_psi=psi)
                assert torch.equal(truncated, nvidia_truncation(w_avg, ws, psi))
                torch.testing.assert_close(truncated, w_avg + psi * (ws - w_avg), rtol=0, atol=1e-6)
            cut = model.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
            assert torch.equal(cut[:, :2], nvidia_truncation(w_avg, ws[:, :2], 0.5))
            assert torch.equal(cut[:, 2:], ws[:, 2:])
        # Not the class centres: those are what "class" gives, asked for per call.
        towards_class = G.mapping(z, c, truncation_psi=0.0, truncation_centre="class")
        assert torch.equal(towards_class[:, 0], G.mapping.class_centres(c))
        assert not torch.allclose(towards_class, G.mapping(z, c, truncation_psi=0.0), atol=1e-3)


def test_a_checkpoint_saved_before_the_field_existed_is_read_by_where_it_came_from(conditional_pickle, tmp_path):
    directory = tmp_path / "old"
    save_generator(import_stylegan2_pickle(conditional_pickle), directory)
    config = json.loads((directory / "config.json").read_text())
    del config["generator"]["truncation_centre"]
    (directory / "config.json").write_text(json.dumps(config))
    assert load_generator(directory).truncation_centre == "global"  # imported from a .pkl
    (directory / "training.json").write_text("{}")  # what our training loop writes beside its exports
    assert load_generator(directory).truncation_centre == "class"


def test_the_bundled_default_keeps_truncating_towards_each_class_centre(tmp_path):
    G = load_generator(BUNDLED)
    assert G.truncation_centre == "class"
    z, c = latents(G.config, classes=(0, 0, 17, 59))
    with torch.no_grad():
        ws = G.mapping(z, c)
        centres = G.mapping.class_centres(c).unsqueeze(1)
        truncated = G.mapping(z, c, truncation_psi=0.7)
        assert torch.equal(truncated, truncate(ws, centres, 0.7))
        assert not torch.allclose(truncated, nvidia_truncation(G.mapping.w_avg, ws, 0.7), atol=1e-3)
        # A copy made before its config recorded the field (load_default_model copies the
        # whole folder, training.json included) truncates the same way.
        copy = tmp_path / "notionists-64"
        shutil.copytree(BUNDLED, copy, ignore=shutil.ignore_patterns("classifier"))
        config = json.loads((copy / "config.json").read_text())
        del config["generator"]["truncation_centre"]
        (copy / "config.json").write_text(json.dumps(config))
        assert torch.equal(load_generator(copy).mapping(z, c, truncation_psi=0.7), truncated)
        # The centre can be overridden for one call.
        towards_w_avg = G.mapping(z, c, truncation_psi=0.7, truncation_centre="global")
        assert torch.equal(towards_w_avg, nvidia_truncation(G.mapping.w_avg, ws, 0.7))


def test_a_bad_centre_is_refused():
    with pytest.raises(ValueError, match="truncation_centre must be 'global' or 'class', got 'median'"):
        GeneratorConfig(truncation_centre="median")
    G = random_generator(CONDITIONAL, seed=0)
    z, c = latents(CONDITIONAL)
    with pytest.raises(ValueError, match="truncation_centre must be 'global' or 'class'"):
        G.mapping(z, c, truncation_psi=1.0, truncation_centre="median")
    with pytest.raises(ValueError, match="truncation_centre must be 'global' or 'class'"):
        G.set_truncation_centre("median")
    assert G.set_truncation_centre("global").config.truncation_centre == G.truncation_centre == "global"


def test_an_unconditional_model_has_one_centre():
    config = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=8, channel_base=64, channel_max=16, mapping_layers=1)
    G = random_generator(config, seed=0)
    G.mapping.w_avg.fill_(0.5)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G.mapping(z, None, 0.6, truncation_centre="class"), G.mapping(z, None, 0.6))


def engine(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generation.stylegan", *map(str, args)], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_cli_renders_with_the_models_centre_or_the_one_asked_for(conditional_pickle, tmp_path):
    model = tmp_path / "model"
    result = engine("import", conditional_pickle, model)
    assert result.returncode == 0, result.stderr
    assert "truncation centre global" in result.stdout
    G = load_generator(model)
    z, c = latents(G.config, classes=(1,))
    with torch.no_grad():
        ws = G.mapping(z, c)
        expected = {
            "global": nvidia_truncation(G.mapping.w_avg, ws, 0.7),
            "class": truncate(ws, G.mapping.class_centres(c).unsqueeze(1), 0.7),
        }
    for flag, centre in ((None, "global"), ("global", "global"), ("class", "class")):
        out = tmp_path / f"{flag}.npz"
        extra = [] if flag is None else ["--truncation-centre", flag]
        result = engine("render", model, "--seeds", "0", "--class", "1", "--psi", "0.7", *extra, "--out", out)
        assert result.returncode == 0, result.stderr
        assert f"truncation centre {centre}" in result.stdout
        assert np.array_equal(np.load(out)["ws"], expected[centre].numpy()), flag

    bad = ["--truncation-centre", "mean"]
    result = engine("render", model, "--seeds", "0", "--class", "1", *bad, "--out", tmp_path / "x.npz")
    assert result.returncode == 2 and "invalid choice: 'mean'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
