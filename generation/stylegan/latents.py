"""Latent codes: seeds -> z, class labels -> c, W+ editing.

A seed means the same persona everywhere: z is drawn with NumPy's legacy
``RandomState(seed).randn``, the recipe the public StyleGAN tools use, so seeds agree
with reference renders and across machines.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from .config import GeneratorConfig


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """The latent z [z_dim] (float32) for ``seed``."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)[0]).to(torch.float32)


def class_label(config: GeneratorConfig, class_index: int | None) -> torch.Tensor | None:
    """One-hot c [c_dim] for a conditional generator; None for an unconditional one."""
    if config.c_dim == 0:
        if class_index is not None:
            raise ValueError("this generator is unconditional: it takes no class label")
        return None
    if class_index is None:
        raise ValueError(f"this generator is conditional: give a class label in 0..{config.c_dim - 1}")
    if not 0 <= class_index < config.c_dim:
        raise ValueError(f"class label {class_index} is out of range 0..{config.c_dim - 1}")
    c = torch.zeros(config.c_dim)
    c[class_index] = 1
    return c


def parse_range(text: str) -> list[int]:
    """'0-3,6' -> [0, 1, 2, 3, 6] (inclusive ranges)."""
    values: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise ValueError(f"not a range of whole numbers: {text!r} (expected e.g. '0-7' or '1,4,9')")
        start, end = int(match[1]), int(match[2] or match[1])
        if end < start:
            raise ValueError(f"range {part.strip()!r} ends before it starts")
        values.extend(range(start, end + 1))
    return values


def style_mix(ws: torch.Tensor, source: torch.Tensor, layers: list[int] | range) -> torch.Tensor:
    """W+ [N, num_ws, w_dim] with ``layers`` taken from ``source`` (same shape)."""
    if ws.shape != source.shape:
        raise ValueError(f"cannot mix W+ of shapes {tuple(ws.shape)} and {tuple(source.shape)}")
    layers = list(layers)
    num_ws = ws.shape[1]
    if any(not 0 <= layer < num_ws for layer in layers):
        raise ValueError(f"mixing layers {layers} fall outside 0..{num_ws - 1}")
    mixed = ws.clone()
    mixed[:, layers] = source[:, layers]
    return mixed


def validate_wplus(ws: np.ndarray | torch.Tensor, config: GeneratorConfig) -> np.ndarray:
    """Check a single W+ latent [num_ws, w_dim] and return it as float32 NumPy.

    Refuses other shapes, non-float32 dtypes and NaN/inf values.
    """
    array = ws.detach().cpu().numpy() if isinstance(ws, torch.Tensor) else np.asarray(ws)
    expected = (config.num_ws, config.w_dim)
    if array.shape != expected:
        raise ValueError(f"latent must have shape {list(expected)} (num_ws × w_dim), got {list(array.shape)}")
    if array.dtype != np.float32:
        raise ValueError(f"latent must be float32, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError("latent contains NaN or infinite values")
    return array


def images_to_uint8(img: torch.Tensor) -> np.ndarray:
    """Generator output [N, C, H, W] in nominal [-1, 1] -> [N, H, W, C] uint8."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
