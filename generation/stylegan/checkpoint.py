"""Our checkpoint format: ``config.json`` + ``weights.safetensors`` in one directory.

The runtime loads nothing else: safetensors holds raw tensors only, so loading a
checkpoint cannot execute code. The sha256 of the weights file identifies a model (the
JSON config is not part of it).

``config.json`` holds ``{"format_version": 1, "generator": GeneratorConfig.to_dict()}``,
which includes the model's ``truncation_centre``. Configs written before that field
existed lack it; ``read_config`` reads them by where they came from (see
``legacy_truncation_centre``).
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
# Written beside every export by our training loop (``training.loop.export_generator``),
# never by the .pkl importer.
TRAINING_FILE = "training.json"
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


def legacy_truncation_centre(directory: str | Path) -> str:
    """The truncation centre of a checkpoint whose config predates the field.

    Such a config was written either by the .pkl importer or by our training loop,
    and until the field existed the engine truncated every conditional model towards
    its class's centre. The two are told apart by what the training loop writes beside
    each export, ``training.json``: with it, the model was trained here and keeps
    ``"class"``, the truncation it was measured with and has rendered with (the bundled
    default included, in copies made before its config recorded the field); without
    it, the model was imported from a .pkl and gets ``"global"``, so that it renders
    what NVIDIA's code renders for the same seed, class and psi. Unconditional models
    render the same either way.
    """
    return "class" if (Path(directory) / TRAINING_FILE).is_file() else "global"


def read_config(directory: str | Path) -> GeneratorConfig:
    """The generator config saved in ``directory``; CheckpointError (one line) if it is
    missing, unreadable or invalid (a field out of its bounds, or a network too large:
    see ``config.py``)."""
    path = Path(directory) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint config not found: {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint config {path} is unreadable: {error}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a version-{FORMAT_VERSION} Persona Studio generator config")
    generator = data.get("generator")
    if not isinstance(generator, dict):
        raise CheckpointError(f"{path} holds no generator config (expected an object under 'generator')")
    if "truncation_centre" not in generator:
        generator = {**generator, "truncation_centre": legacy_truncation_centre(directory)}
    # The config checks every field's bounds and the network's size before anything is built.
    try:
        return GeneratorConfig.from_dict(generator)
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
