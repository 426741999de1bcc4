"""Our checkpoint format: ``config.json`` + ``weights.safetensors`` in one directory.

The runtime loads nothing else: safetensors holds raw tensors only, so loading a
checkpoint cannot execute code. The sha256 of the weights file identifies a model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import GeneratorConfig
from .generator import Generator

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_generator(generator: Generator, directory: str | Path) -> str:
    """Write ``generator`` to ``directory``; returns the sha256 of the weights file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in generator.state_dict().items()}
    weights = directory / WEIGHTS_FILE
    save_file(tensors, str(weights), metadata={"format": "persona-studio-stylegan2", "version": str(FORMAT_VERSION)})
    config = {"format_version": FORMAT_VERSION, "generator": generator.config.to_dict()}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return file_sha256(weights)


def read_config(directory: str | Path) -> GeneratorConfig:
    path = Path(directory) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint config not found: {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint config {path} is unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a version-{FORMAT_VERSION} Persona Studio generator config")
    try:
        return GeneratorConfig.from_dict(data["generator"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} holds an invalid generator config: {error}") from None


def load_generator(
    directory: str | Path, device: str | torch.device = "cpu", expected_sha256: str | None = None
) -> Generator:
    """Rebuild the generator saved in ``directory`` on ``device``, in eval mode."""
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    if expected_sha256 is not None:
        actual = file_sha256(weights)
        if actual != expected_sha256:
            raise CheckpointError(f"checkpoint weights {weights} have sha256 {actual}, expected {expected_sha256}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"checkpoint weights {weights} are unreadable: {error}") from None
    generator = Generator(config)
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint weights {weights} do not fit its config: {error}") from None
    return generator.to(device).eval().requires_grad_(False)
