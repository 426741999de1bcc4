"""Identity of rendered images: is this the same person? No Django.

An *identity measure* maps images (uint8 [N, H, W, C]) to unit vectors [N, D] whose
cosine similarity is high for the same person and low for different people,
whatever they wear and whatever their hands do. Each measure carries its
calibration (`IdentityCalibration`): the similarity threshold that best separates
same-person from different-person pairs, and the medians of both, measured on
held-out people. Two measures ship:

- `LearnedIdentity`: a small CNN (`IdentityNetwork`) trained with a supervised
  contrastive loss on renders of the same people in different outfits and
  gestures (generation/stylegan/training/identity_embedding.py). A model ships
  one in its folder under ``identity/`` (weights + ``identity.json`` with the
  calibration); the bundled default does.
- `PixelStructureIdentity`, the fallback for models without one: the Pearson
  correlation of the two images' pixels box-averaged to at most 64×64. It
  compares structure, not people: it punishes a raised arm and forgives another
  face with the same layout, so its numbers are a weak signal (the calibration
  it reports is a convention, not a measurement).

A brand with a photographic model can plug a face-recognition embedding in
behind the same interface (`IdentityMeasure`: ``embed`` and ``calibration``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

IDENTITY_DIR = "identity"
IDENTITY_WEIGHTS = "identity.safetensors"
IDENTITY_META = "identity.json"
MAX_SIDE = 64


@dataclass(frozen=True)
class IdentityCalibration:
    """How to read a similarity: ``threshold`` separates same from different people best;
    the medians are those of real same-person and different-person pairs.
    ``duplicate_threshold``: at or above it two images show the same person for the
    identity guard, which must rarely match two different people among many (None: the
    measure is not fit for the guard)."""

    threshold: float
    same_person_median: float
    different_person_median: float
    duplicate_threshold: float | None = None


class IdentityMeasure(Protocol):
    name: str
    calibration: IdentityCalibration

    def embed(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, C] -> float32 unit vectors [N, D]."""


def identity_similarity(measure: IdentityMeasure, image: np.ndarray, reference: np.ndarray) -> float:
    """Cosine similarity in [-1, 1] of two uint8 [H, W, C] images under ``measure``."""
    if image.shape != reference.shape:
        raise ValueError(f"cannot compare images of shapes {list(image.shape)} and {list(reference.shape)}")
    a, b = measure.embed(np.stack([image, reference]))
    return float(a @ b)


def box_downsample(images: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """uint8 [N, H, W, C] (square) -> float64 [N, S, S, C], S ≤ max_side, by box averaging."""
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square [N, H, W, C] arrays, got shape {list(images.shape)}")
    pixels = images.astype(np.float64)
    factor = max(1, pixels.shape[1] // max_side)
    side = pixels.shape[1] // factor
    pixels = pixels[:, : side * factor, : side * factor]
    return pixels.reshape(len(pixels), side, factor, side, factor, -1).mean(axis=(2, 4))


class PixelStructureIdentity:
    """Fallback measure: centred, normalised pixels at ≤ 64×64, so the cosine of two
    embeddings is the Pearson correlation of the images."""

    name = "pixel-structure"
    calibration = IdentityCalibration(threshold=0.9, same_person_median=0.95, different_person_median=0.8)

    def embed(self, images: np.ndarray) -> np.ndarray:
        flat = box_downsample(images).reshape(len(images), -1)
        flat = flat - flat.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        return (flat / np.where(norms == 0, 1, norms)).astype(np.float32)


class IdentityNetwork(nn.Module):
    """Images [N, 3, 64, 64] in [-1, 1] -> unit embeddings [N, dim].

    Four strided convolutions down to 4×4 (kept, not pooled away: where a feature sits
    — hair above, eyes in the middle — is part of who it is), then two linear layers.
    """

    def __init__(self, width: int = 32, dim: int = 64) -> None:
        super().__init__()
        self.width, self.dim = width, dim
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
            nn.Conv2d(width * 2, width * 4, 3, stride=2, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(),
            nn.Conv2d(width * 4, width * 4, 3, stride=2, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(),
            nn.Conv2d(width * 4, width * 4, 3, stride=2, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(),
            nn.Flatten(), nn.Linear(width * 4 * 16, 256), nn.ReLU(), nn.Linear(256, dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != MAX_SIDE:
            x = F.interpolate(x, size=(MAX_SIDE, MAX_SIDE), mode="area" if x.shape[-1] > MAX_SIDE else "bilinear")
        return F.normalize(self.features(x), dim=1)


class LearnedIdentity:
    """A trained `IdentityNetwork` with its calibration."""

    name = "learned"

    def __init__(self, network: IdentityNetwork, calibration: IdentityCalibration, info: dict | None = None) -> None:
        self.network = network.eval()
        self.calibration = calibration
        self.info = info or {}

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(box_downsample(images, MAX_SIDE).astype(np.float32)).permute(0, 3, 1, 2)
        return self.embed_tensor(x / 127.5 - 1).numpy()

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable: images [N, 3, H, W] in [-1, 1] -> [N, D] (training uses this)."""
        return self.network(x)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        save_file(tensors, str(directory / IDENTITY_WEIGHTS))
        meta = {"width": self.network.width, "dim": self.network.dim, **asdict(self.calibration), **self.info}
        (directory / IDENTITY_META).write_text(json.dumps(meta, indent=1) + "\n")


def load_identity_measure(model_dir: str | Path | None) -> IdentityMeasure:
    """The learned measure a model ships under ``identity/``, else the pixel fallback."""
    directory = None if model_dir is None else Path(model_dir) / IDENTITY_DIR
    if directory is None or not (directory / IDENTITY_META).is_file():
        return PixelStructureIdentity()
    return load_learned_identity(directory)


def load_learned_identity(directory: str | Path) -> LearnedIdentity:
    """A `LearnedIdentity` saved in ``directory`` (identity.json + weights)."""
    directory = Path(directory)
    meta = json.loads((directory / IDENTITY_META).read_text())
    network = IdentityNetwork(width=meta["width"], dim=meta["dim"])
    network.load_state_dict(load_file(str(directory / IDENTITY_WEIGHTS)))
    calibration = IdentityCalibration(
        threshold=meta["threshold"],
        same_person_median=meta["same_person_median"],
        different_person_median=meta["different_person_median"],
        duplicate_threshold=meta.get("duplicate_threshold"),
    )
    info = {k: v for k, v in meta.items() if k not in ("width", "dim", *asdict(calibration))}
    return LearnedIdentity(network, calibration, info)
