import json

import pytest
import torch

from generation.stylegan import (
    CheckpointError,
    ModelCache,
    file_sha256,
    load_generator,
    random_generator,
    save_generator,
)


def test_it_round_trips_through_safetensors(tmp_path, small_generator):
    sha256 = save_generator(small_generator, tmp_path / "model")
    assert sha256 == file_sha256(tmp_path / "model" / "weights.safetensors")
    loaded = load_generator(tmp_path / "model", expected_sha256=sha256)
    assert loaded.config == small_generator.config
    z = torch.randn(2, small_generator.config.z_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z), small_generator(z))


def test_it_gives_the_same_weights_for_the_same_seed(small_config):
    a, b, c = (random_generator(small_config, seed=s) for s in (5, 5, 6))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.mapping.fc0.weight, c.mapping.fc0.weight)


def test_it_refuses_a_tampered_weights_file(tmp_path, small_generator):
    sha256 = save_generator(small_generator, tmp_path)
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="expected " + sha256):
        load_generator(tmp_path, expected_sha256=sha256)


def test_it_explains_missing_and_broken_files(tmp_path, small_generator):
    with pytest.raises(CheckpointError, match="config not found"):
        load_generator(tmp_path / "nowhere")
    save_generator(small_generator, tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_generator(tmp_path)
    (tmp_path / "weights.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights not found"):
        load_generator(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "generator": {"img_resolution": 12}}))
    with pytest.raises(CheckpointError, match="invalid generator config: img_resolution must be a power of two"):
        load_generator(tmp_path)


def test_it_refuses_weights_of_another_architecture(tmp_path, small_generator, small_config):
    save_generator(small_generator, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["generator"]["channel_max"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit its config"):
        load_generator(tmp_path)


def test_the_cache_loads_each_checkpoint_once(tmp_path, small_generator, small_config):
    save_generator(small_generator, tmp_path / "a")
    save_generator(random_generator(small_config, seed=2), tmp_path / "b")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    cache = ModelCache(max_size=1)
    first = cache.get(tmp_path / "a")
    assert cache.get(tmp_path / "link") is first
    second = cache.get(tmp_path / "b")
    assert second is not first and len(cache) == 1
    assert cache.get(tmp_path / "a") is not first  # evicted, loaded again


def test_the_cache_reloads_a_replaced_checkpoint(tmp_path, small_generator, small_config):
    cache = ModelCache(max_size=2)
    save_generator(small_generator, tmp_path)
    first = cache.get(tmp_path)
    save_generator(random_generator(small_config, seed=9), tmp_path)
    assert not torch.equal(cache.get(tmp_path).mapping.fc0.weight, first.mapping.fc0.weight)
