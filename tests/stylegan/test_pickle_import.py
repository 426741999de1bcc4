import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from generation.stylegan import CheckpointError, GeneratorConfig, import_stylegan2_pickle, random_generator
from generation.stylegan.layers import FullyConnectedLayer

from .nvidia_format import generator_record, record, write_checkpoint


def same_outputs(a, b) -> bool:
    z = torch.randn(2, a.config.z_dim, generator=torch.Generator().manual_seed(0))
    c = None
    if a.config.c_dim:
        c = torch.eye(a.config.c_dim)[:2]
    with torch.no_grad():
        return torch.equal(a(z, c, truncation_psi=0.5), b(z, c, truncation_psi=0.5))


def test_it_imports_a_full_training_snapshot(tmp_path, small_generator):
    class Discriminator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.b16 = FullyConnectedLayer(2, 2)

    path = write_checkpoint(
        tmp_path / "snapshot.pkl",
        {
            "G": generator_record(small_generator),
            "D": record(Discriminator()),
            "G_ema": generator_record(small_generator),
            "augment_pipe": None,
            "training_set_kwargs": {"path": "data.zip", "resolution": 16},
        },
    )
    assert same_outputs(import_stylegan2_pickle(path), small_generator)


def test_it_imports_fp16_conditional_generators(tmp_path):
    config = GeneratorConfig(
        z_dim=16, w_dim=16, c_dim=3, img_resolution=16, channel_base=256, channel_max=32,
        mapping_layers=2, num_fp16_res=2, conv_clamp=256,
    )  # fmt: skip
    generator = random_generator(config, seed=3)
    path = write_checkpoint(tmp_path / "fp16.pkl", {"G_ema": generator_record(generator)})
    imported = import_stylegan2_pickle(path)
    assert imported.config == config
    assert same_outputs(imported, generator)


def test_it_reads_protocol_3_files_with_numpy_arrays(tmp_path, small_generator):
    # Files from 2021 use protocol 3 (sets as builtins.set); the StyleGAN3 code base
    # stores NumPy arrays as plain attributes.
    extra = {"_init_kwargs_extra": np.arange(4, dtype=np.float32)}
    path = write_checkpoint(tmp_path / "p3.pkl", {"G_ema": generator_record(small_generator, extra)}, protocol=3)
    assert same_outputs(import_stylegan2_pickle(path), small_generator)


def test_it_never_runs_embedded_or_foreign_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Exploit()}))
    with pytest.raises(CheckpointError, match=r"refers to (posix|os)\.system, which is not allowed"):
        import_stylegan2_pickle(path)
    assert not marker.exists()


def test_it_refuses_tensorflow_era_pickles(tmp_path):
    # What a TF-era file starts with: a global from dnnlib.tflib.
    path = tmp_path / "tf.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(CheckpointError, match="TensorFlow-era"):
        import_stylegan2_pickle(path)


def test_it_names_what_the_file_holds_when_the_network_is_missing(tmp_path, small_generator):
    path = write_checkpoint(tmp_path / "g.pkl", {"G": generator_record(small_generator)})
    with pytest.raises(CheckpointError, match=r"no generator named 'G_ema' \(found: G\)"):
        import_stylegan2_pickle(path)
    assert same_outputs(import_stylegan2_pickle(path, network="G"), small_generator)


def test_it_refuses_weights_that_do_not_fit(tmp_path, small_generator):
    generator = generator_record(small_generator)
    mapping = generator.meta["state"]["_modules"]["mapping"]
    mapping.meta["state"]["_modules"]["fc0"].meta["state"]["_parameters"]["weight"] = torch.zeros(3, 3)
    path = write_checkpoint(tmp_path / "bad.pkl", {"G_ema": generator})
    with pytest.raises(CheckpointError, match=r"wrong shape: mapping\.fc0\.weight"):
        import_stylegan2_pickle(path)


def test_it_refuses_garbage(tmp_path):
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="not a readable StyleGAN checkpoint"):
        import_stylegan2_pickle(path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        import_stylegan2_pickle(tmp_path / "missing.pkl")


def test_the_standard_unpickler_is_not_what_we_use(reference_pickle):
    # The fixture needs NVIDIA's torch_utils to load with pickle.load; ours needs nothing.
    code = f"import pickle; pickle.load(open({str(reference_pickle)!r}, 'rb'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "torch_utils" in result.stderr
    assert import_stylegan2_pickle(reference_pickle).config.img_resolution == 32
