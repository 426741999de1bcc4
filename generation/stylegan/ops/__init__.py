"""Ops with interchangeable implementations.

Each op has a readable pure-PyTorch reference (``bias_act.py``, ``upfirdn2d.py``), our
own CUDA kernels (``cuda/``) used for CUDA tensors once they build, and a fast CPU path
(``fast_cpu.py``) for the resampling that dominates CPU inference. ``use_reference_ops()``
forces the reference everywhere, for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

from .bias_act import bias_act_reference
from .upfirdn2d import IntPair, as_padding, filter_size, make_filter, upfirdn2d_reference

_force_reference = contextvars.ContextVar("force_reference_ops", default=False)


@contextlib.contextmanager
def use_reference_ops() -> Iterator[None]:
    """Run everything inside the block on the reference ops."""
    token = _force_reference.set(True)
    try:
        yield
    finally:
        _force_reference.reset(token)


def reference_ops_forced() -> bool:
    return _force_reference.get()


def _cuda_ops_ready(x: torch.Tensor) -> bool:
    if not x.is_cuda or _force_reference.get():
        return False
    from .cuda import cuda_ops_available

    return cuda_ops_available()


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """x + b along ``dim``, activation, gain, clamp (see ``bias_act.py``)."""
    if _cuda_ops_ready(x):
        from .cuda.functions import bias_act_cuda

        return bias_act_cuda(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return bias_act_reference(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample, FIR-filter, downsample x [N, C, H, W] (see ``upfirdn2d.py``)."""
    if _cuda_ops_ready(x):
        from .cuda.functions import upfirdn2d_cuda

        return upfirdn2d_cuda(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample x [N, C, H, W] -> [N, C, H * up, W * up] through the FIR filter f."""
    fw, fh = filter_size(f)
    padding = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=padding, gain=up * up)


__all__ = [
    "as_padding",
    "bias_act",
    "filter_size",
    "make_filter",
    "reference_ops_forced",
    "upfirdn2d",
    "upsample2d",
    "use_reference_ops",
]
