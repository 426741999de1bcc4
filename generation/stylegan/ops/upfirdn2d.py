"""Upsample, FIR-filter, downsample (upfirdn2d): the readable reference.

The synthesis network resamples with the binomial filter [1, 3, 3, 1] (Zhang 2019,
"Making Convolutional Networks Shift-Invariant Again"), which the StyleGAN2 paper uses
for every up-sampling step.

Semantics for x [N, C, H, W] and a filter f ([fh, fw], or [ft] meaning separable):
1. insert ``up - 1`` zeros after every input pixel (H -> H * up),
2. pad with zeros by (px0, px1, py0, py1); negative padding crops,
3. convolve with f (true convolution; ``flip_filter=True`` gives correlation),
   the 2-D filter scaled by ``gain``,
4. keep every ``down``-th pixel.
Output height: (H * up_y + py0 + py1 - fh) // down_y + 1, likewise for the width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

IntPair = int | Sequence[int]


def as_pair(value: IntPair, name: str) -> tuple[int, int]:
    """An int or an (x, y) pair -> (x, y)."""
    if isinstance(value, int):
        return value, value
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or an (x, y) pair, got {value!r}")
    return pair


def as_padding(padding: IntPair) -> tuple[int, int, int, int]:
    """int, [px, py] or [px0, px1, py0, py1] -> (px0, px1, py0, py1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    values = tuple(int(v) for v in padding)
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    if len(values) == 4:
        return values
    raise ValueError(f"padding must be an int, [px, py] or [px0, px1, py0, py1], got {padding!r}")


def make_filter(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """A normalized 2-D FIR filter [n, n] from 1-D taps, its sum equal to ``gain``."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum() * gain


def filter_size(f: torch.Tensor) -> tuple[int, int]:
    """(fw, fh) of a 2-D or separable 1-D filter."""
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    if f.ndim == 2:
        return f.shape[1], f.shape[0]
    raise ValueError(f"filter must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}")


def upfirdn2d_reference(
    x: torch.Tensor,
    f: torch.Tensor,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Reference upfirdn2d on x [N, C, H, W] -> [N, C, H', W'] (see module docstring)."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    upx, upy = as_pair(up, "up")
    downx, downy = as_pair(down, "down")
    px0, px1, py0, py1 = as_padding(padding)
    n, c, h, w = x.shape

    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)

    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::downy, ::downx]
