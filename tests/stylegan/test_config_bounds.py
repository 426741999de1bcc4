"""Every field of the generator (and discriminator) config is bounded, and the network's
size is estimated from the config before anything is built: an absurd config fails at
once with one line naming the field, from Python, a checkpoint directory, a .pkl, and
the command line, instead of trying to allocate terabytes."""

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generation.stylegan import CheckpointError, Generator, GeneratorConfig, import_stylegan2_pickle, load_generator
from generation.stylegan.config import MAX_PARAMETER_BYTES
from generation.stylegan.training.discriminator import Discriminator, DiscriminatorConfig

from .nvidia_format import generator_record, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2)

# field -> [(bad value, what the one-line message says)]; the generator defaults are 256² etc.
GENERATOR_BAD = {
    "z_dim": [(0, "z_dim must be a whole number in 1..2048, got 0"), (10**9, "in 1..2048"), (512.5, "got 512.5")],
    "w_dim": [(4096, "w_dim must be a whole number in 1..2048, got 4096"), ("512", "got '512'")],
    "c_dim": [(-1, "c_dim must be a whole number in 0..4096, got -1"), (10**6, "in 0..4096")],
    "img_resolution": [
        (12, "img_resolution must be a power of two from 4 to 2048, got 12"),
        (2**20, "from 4 to 2048"),
        (2, "from 4 to 2048"),
        (True, "got True"),
    ],
    "img_channels": [(0, "img_channels must be a whole number in 1..4, got 0"), (3000, "in 1..4")],
    "mapping_layers": [(0, "mapping_layers must be a whole number in 1..16, got 0"), (10**6, "in 1..16")],
    "mapping_lr_multiplier": [
        (0, "mapping_lr_multiplier must be a number in (0, 10], got 0"),
        (float("nan"), "got nan"),
        (1e6, "in (0, 10]"),
    ],
    "embed_features": [(0, "embed_features must be a whole number in 1..2048 or null, got 0"), (10**5, "1..2048")],
    "channel_base": [
        (2**40, "channel_base must be a whole number in 256..1048576, got 1099511627776"),
        (128, "in 256..1048576"),  # fewer than one feature map at 256²
    ],
    "channel_max": [(0, "channel_max must be a whole number in 1..1024, got 0"), (10**7, "in 1..1024")],
    "num_fp16_res": [(-1, "num_fp16_res must be a whole number in 0..10, got -1"), (99, "in 0..10")],
    "conv_clamp": [
        (0, "conv_clamp must be a number in (0, 65504] or null, got 0"),
        (float("inf"), "got inf"),
        (-256, "got -256"),
    ],
    "resample_filter": [
        ([], "resample_filter must be a list of 1..8 finite taps with a non-zero sum, got []"),
        ([1] * 100, "1..8 finite taps"),
        ([1, -1], "non-zero sum"),
        ([1, float("nan")], "finite taps"),
        ("1331", "got '1331'"),
    ],
    "truncation_centre": [("median", "truncation_centre must be 'global' or 'class', got 'median'")],
}

DISCRIMINATOR_BAD = {
    "c_dim": [(10**6, "c_dim must be a whole number in 0..4096, got 1000000")],
    "img_resolution": [(4, "img_resolution must be a power of two from 8 to 2048, got 4"), (2**30, "from 8 to 2048")],
    "img_channels": [(5, "img_channels must be a whole number in 1..4, got 5")],
    "channel_base": [(2**40, "channel_base must be a whole number in 64..1048576")],
    "channel_max": [(10**6, "channel_max must be a whole number in 1..1024")],
    "cmap_dim": [(10**6, "cmap_dim must be a whole number in 1..2048 or null")],
    "mapping_layers": [(-1, "mapping_layers must be a whole number in 0..16, got -1")],
    "aux_classifier": [("yes", "aux_classifier must be true or false, got 'yes'")],
    "mbstd_group_size": [(10**6, "mbstd_group_size must be a whole number in 0..64")],
    "mbstd_num_channels": [(-1, "mbstd_num_channels must be a whole number in 0..16"), (3, "must divide the 512")],
    "num_fp16_res": [(11, "num_fp16_res must be a whole number in 0..10, got 11")],
    "conv_clamp": [(1e9, "conv_clamp must be a number in (0, 65504] or null")],
    "resample_filter": [([0, 0], "resample_filter must be a list of 1..8 finite taps with a non-zero sum")],
}


def cases(table):
    return [pytest.param(field, value, message, id=f"{field}={value!r}"[:40]) for field, rows in table.items()
            for value, message in rows]  # fmt: skip


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def test_every_field_is_bounded():
    assert set(GENERATOR_BAD) == {f.name for f in dataclasses.fields(GeneratorConfig)}
    assert set(DISCRIMINATOR_BAD) == {f.name for f in dataclasses.fields(DiscriminatorConfig)}


@pytest.mark.parametrize("field,value,message", cases(GENERATOR_BAD))
def test_a_generator_field_out_of_bounds_is_refused_in_one_line(field, value, message):
    with pytest.raises(ValueError) as caught:
        GeneratorConfig(**{field: value})
    assert message in one_line(caught.value)
    assert one_line(caught.value).startswith(field)


@pytest.mark.parametrize("field,value,message", cases(DISCRIMINATOR_BAD))
def test_a_discriminator_field_out_of_bounds_is_refused_in_one_line(field, value, message):
    with pytest.raises(ValueError) as caught:
        DiscriminatorConfig(**{field: value})
    assert message in one_line(caught.value)


def test_the_bounds_admit_the_public_configurations():
    for resolution in (4, 32, 256, 1024, 2048):
        GeneratorConfig(img_resolution=resolution)  # config F channels
    GeneratorConfig(c_dim=1000, img_resolution=512, num_fp16_res=4, conv_clamp=256, embed_features=512)
    GeneratorConfig(img_channels=1, mapping_layers=2, mapping_lr_multiplier=1.0, resample_filter=[1, 2, 1])
    DiscriminatorConfig(c_dim=1000, img_resolution=1024, channel_base=32768, num_fp16_res=4, conv_clamp=256)


@pytest.mark.parametrize(
    "config",
    [
        GeneratorConfig(),
        GeneratorConfig(**SMALL, c_dim=5, embed_features=7, img_channels=1, num_fp16_res=2, conv_clamp=256),
        GeneratorConfig(**{**SMALL, "img_resolution": 32, "mapping_layers": 5}, c_dim=3),
        DiscriminatorConfig(),
        DiscriminatorConfig(c_dim=7, img_resolution=32, channel_base=512, channel_max=64, aux_classifier=True,
                            cmap_dim=20, mapping_layers=3, mbstd_num_channels=2),  # fmt: skip
        DiscriminatorConfig(img_channels=1, mbstd_num_channels=0, img_resolution=16, channel_base=128),
    ],
    ids=lambda config: type(config).__name__,
)
def test_the_size_estimate_counts_exactly_what_the_network_holds(config):
    network = Generator(config) if isinstance(config, GeneratorConfig) else Discriminator(config)
    assert config.parameter_count() == sum(t.numel() for t in network.state_dict().values())
    assert config.parameter_bytes == 4 * config.parameter_count()


def test_a_network_too_large_for_its_bounds_is_refused_before_it_is_built():
    # Each field within its bounds, together 1.2 GiB of parameters.
    huge = dict(z_dim=2048, w_dim=2048, c_dim=4096, img_resolution=2048, channel_base=2**20, channel_max=1024,
                mapping_layers=16)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ValueError) as caught:
        GeneratorConfig(**huge)
    assert time.monotonic() - started < 1.0  # computed, not allocated
    message = one_line(caught.value)
    assert "this generator would hold 317,236,417 parameters (1.2 GiB in float32)" in message
    assert f"more than the {MAX_PARAMETER_BYTES / 2**30:g} GiB allowed" in message
    with pytest.raises(ValueError, match="this discriminator would hold .* more than the 1 GiB allowed"):
        DiscriminatorConfig(img_resolution=2048, channel_base=2**20, channel_max=1024, c_dim=4096, cmap_dim=2048,
                            mapping_layers=16)  # fmt: skip
    assert GeneratorConfig(img_resolution=1024).parameter_bytes < MAX_PARAMETER_BYTES / 8  # config F fits


ABSURD = {
    "z_dim": 10**9,
    "channel_max": 10**7,
    "img_resolution": 2**30,
    "mapping_layers": 10**6,
    "c_dim": 10**8,
}


def write_config(directory: Path, **fields) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format_version": 1, "generator": {**GeneratorConfig(**SMALL).to_dict(), **fields}}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "weights.safetensors").write_bytes(b"")  # never read: the config fails first
    return directory


@pytest.mark.parametrize("field", sorted(ABSURD))
def test_a_checkpoint_with_an_absurd_config_fails_in_one_line(tmp_path, field):
    directory = write_config(tmp_path / "model", **{field: ABSURD[field]})
    with pytest.raises(CheckpointError) as caught:
        load_generator(directory)
    assert f"holds an invalid generator config: {field} must be" in one_line(caught.value)


def test_a_checkpoint_config_that_is_not_an_object_fails_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "generator": [1, 2]}))
    with pytest.raises(CheckpointError, match="holds no generator config"):
        load_generator(tmp_path)


def test_a_pickle_with_absurd_constructor_arguments_fails_in_one_line(tmp_path):
    from generation.stylegan import random_generator

    record = generator_record(random_generator(GeneratorConfig(**SMALL), seed=0))
    record.meta["state"]["_init_kwargs"]["synthesis_kwargs"]["channel_max"] = 10**7
    path = write_checkpoint(tmp_path / "absurd.pkl", {"G_ema": record})
    with pytest.raises(CheckpointError) as caught:
        import_stylegan2_pickle(path)
    assert "unsupported constructor arguments: channel_max must be a whole number in 1..1024" in one_line(caught.value)
    result = engine("import", path, tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "channel_max must be" in result.stderr
    assert not (tmp_path / "out" / "weights.safetensors").exists()


def engine(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generation.stylegan", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"channel_max": 10**7}, "channel_max must be a whole number in 1..1024, got 10000000"),
        ({"z_dim": 10**9, "w_dim": 10**9}, "z_dim must be a whole number in 1..2048"),
        (
            dict(z_dim=2048, w_dim=2048, c_dim=4096, img_resolution=2048, channel_base=2**20, channel_max=1024,
                 mapping_layers=16),
            "this generator would hold 317,236,417 parameters",
        ),
    ],
    ids=["channels", "dims", "too-large"],
)  # fmt: skip
def test_the_cli_refuses_an_absurd_checkpoint_in_one_line(tmp_path, fields, message):
    directory = write_config(tmp_path / "model", **fields)
    result = engine("render", directory, "--seeds", "0", "--out", tmp_path / "o.npz")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "o.npz").exists()
