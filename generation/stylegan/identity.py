"""Identity consistency of rendered images. No Django.

``identity_consistency(image, reference)`` scores how much a render still shows the
persona of a reference render, from the pixels alone:

1. both images (uint8 [H, W, C]) are box-averaged down to at most 64×64 — the
   scale of a face's layout and features, above the texture and noise that looks
   and re-renders change;
2. the score is the Pearson correlation of the two pixel arrays (all channels,
   each image's mean removed), clipped to [0, 1].

1 means the same picture. It is not a face-recognition model (none ships with the
product): it compares structure, so it rewards a persona that keeps its features
where they were, and falls when the identity layers change what is drawn. On the
tests' random-weights model (64 px), a look (fine rows from another seed) or a pose
(a coarse direction within its useful range) keeps it around 0.85-0.95, while other
identity rows bring it to about 0.6 (see tests/stylegan and tests/generation). Large
pose changes of a trained model lower it too; a learned face embedding can replace this
function without changing its callers.
"""

from __future__ import annotations

import numpy as np

MAX_SIDE = 64


def _structure(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"images must be square [H, W, C] arrays, got shape {list(image.shape)}")
    pixels = image.astype(np.float64)
    factor = max(1, pixels.shape[0] // MAX_SIDE)
    side = pixels.shape[0] // factor
    pixels = pixels[: side * factor, : side * factor]
    return pixels.reshape(side, factor, side, factor, -1).mean(axis=(1, 3))


def identity_consistency(image: np.ndarray, reference: np.ndarray) -> float:
    """Score in [0, 1] of ``image`` against ``reference`` (same shape, uint8 [H, W, C])."""
    if image.shape != reference.shape:
        raise ValueError(f"cannot compare images of shapes {list(image.shape)} and {list(reference.shape)}")
    a, b = _structure(image), _structure(reference)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator == 0:  # a flat image: only an identical one is consistent with it
        return 1.0 if np.array_equal(image, reference) else 0.0
    return float(np.clip((a * b).sum() / denominator, 0.0, 1.0))
