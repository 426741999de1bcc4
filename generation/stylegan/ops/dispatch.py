"""Chooses an implementation for each primitive op call (bias_act, upfirdn2d).

CUDA tensors use our CUDA kernels once they have built (else the reference, with one
warning); CPU tensors use the fast CPU path for inference (no autograd).
``use_reference_ops()`` forces the readable references everywhere, for tests and
benchmarks.

Layering (imports point downwards only)::

    modulated_conv2d.py            the composite: modulated convolution + bias + activation
        dispatch.py                this module: picks a primitive kernel per call
            bias_act.py, upfirdn2d.py, fast_cpu.py, cuda/   the primitives

The composite asks :func:`implementation` which path a call takes, so that it follows
the same choice as the primitives it is built from.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

from .bias_act import bias_act_reference
from .fast_cpu import upfirdn2d_fast
from .upfirdn2d import IntPair, filter_size, upfirdn2d_reference

_force_reference = contextvars.ContextVar("force_reference_ops", default=False)


@contextlib.contextmanager
def use_reference_ops() -> Iterator[None]:
    """Run everything inside the block on the reference ops."""
    token = _force_reference.set(True)
    try:
        yield
    finally:
        _force_reference.reset(token)


def implementation(x: torch.Tensor) -> str:
    """"reference", "cuda" or "fast_cpu": the path an op on ``x`` takes now."""
    if _force_reference.get():
        return "reference"
    if x.is_cuda:
        from .cuda import cuda_ops_available

        return "cuda" if cuda_ops_available() else "reference"
    # The fast path updates tensors in place, which autograd cannot differentiate: it
    # serves inference; training on the CPU runs the references.
    if x.device.type == "cpu" and not torch.is_grad_enabled():
        return "fast_cpu"
    return "reference"


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
    if implementation(x) == "cuda":
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
    chosen = implementation(x)
    if chosen == "cuda":
        from .cuda.functions import upfirdn2d_cuda

        return upfirdn2d_cuda(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    if chosen == "fast_cpu":
        return upfirdn2d_fast(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample x [N, C, H, W] -> [N, C, H * up, W * up] through the FIR filter f."""
    fw, fh = filter_size(f)
    padding = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=padding, gain=up * up)
