import os
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.stylegan import GeneratorConfig, import_stylegan2_pickle, random_generator

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "stylegan2-ada"


def shared_fixture(relative: str) -> Path:
    """A file under ../shared/fixtures/stylegan2-ada: a failure in CI, a skip elsewhere."""
    path = FIXTURES / relative
    if not path.exists():
        message = f"shared fixture {path} is missing (expected ../shared beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def reference_pickle() -> Path:
    return shared_fixture("a_uncond_r32.G_ema.pkl")


@pytest.fixture(scope="session")
def reference_arrays():
    directory = shared_fixture("a_uncond_r32")

    def load(name: str) -> torch.Tensor:
        return torch.from_numpy(np.load(directory / f"{name}.npy", allow_pickle=False))

    return load


@pytest.fixture(scope="session")
def reference_generator(reference_pickle):
    return import_stylegan2_pickle(reference_pickle)


@pytest.fixture(scope="session")
def small_config() -> GeneratorConfig:
    return GeneratorConfig(z_dim=32, w_dim=32, img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2)


@pytest.fixture(scope="session")
def small_generator(small_config):
    return random_generator(small_config, seed=1)
