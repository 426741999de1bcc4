"""Autograd-aware Python entry points of our CUDA kernels.

``bias_act_cuda`` and ``upfirdn2d_cuda`` take exactly the arguments of the references
(``bias_act_reference``, ``upfirdn2d_reference``) and compute the same values. They run the
kernels for CUDA tensors once the extension is built (see ``build.py``); for CPU tensors, or
when the build failed (warned once per op), they call the reference.

Gradients:

* bias_act: dx = dy * gain * act'(x + b), zero where the clamp is active (as torch.clamp,
  the boundaries pass the gradient); db = dx summed over every dimension but ``dim``. The
  slope is piecewise constant, so the gradient of dx with respect to dy is the same kernel:
  any order of differentiation works.
* upfirdn2d: the op is linear in x, and its adjoint is again an upfirdn2d: the flipped
  filter, ``up`` and ``down`` swapped and the padding from :func:`upfirdn2d_grad_padding`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..bias_act import bias_act_reference, resolve_activation
from ..upfirdn2d import IntPair, as_padding, as_pair, upfirdn2d_reference
from .build import _warn_fallback, fallback_reason, get_extension

ACTIVATION_CODES = {"linear": 0, "relu": 1, "lrelu": 2}  # as in kernel_math.cuh
KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _extension_for(x: torch.Tensor, op: str):
    """The loaded extension if the kernels should run for x, else None (warned once)."""
    if not x.is_cuda or x.dtype not in KERNEL_DTYPES:
        return None
    ext = get_extension()
    if ext is None:
        _warn_fallback(op, fallback_reason() or "the CUDA ops are not available")
    return ext


# ---------------------------------------------------------------------------------------
# bias_act
# ---------------------------------------------------------------------------------------


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # type: ignore[override]
        y = get_extension().bias_act(x, b, dim, act, alpha, gain, clamp)
        ctx.save_for_backward(x, b)
        ctx.params = (dim, act, alpha, gain, clamp)
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x, b = ctx.saved_tensors
        dim = ctx.params[0]
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _BiasActGrad.apply(dy, x, b, *ctx.params)
        if b is not None and ctx.needs_input_grad[1]:
            other = [d for d in range(dx.ndim) if d != dim]
            db = dx.sum(other) if other else dx  # sum([]) would reduce everything
        if not ctx.needs_input_grad[0]:
            dx = None
        return dx, db, None, None, None, None, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * slope(x + b); linear in dy, constant (almost everywhere) in x and b."""

    @staticmethod
    def forward(ctx, dy, x, b, dim, act, alpha, gain, clamp):  # type: ignore[override]
        ctx.save_for_backward(x, b)
        ctx.params = (dim, act, alpha, gain, clamp)
        return get_extension().bias_act_grad(dy, x, b, dim, act, alpha, gain, clamp)

    @staticmethod
    def backward(ctx, ddx):  # type: ignore[override]
        x, b = ctx.saved_tensors
        ddy = _BiasActGrad.apply(ddx, x, b, *ctx.params) if ctx.needs_input_grad[0] else None
        return ddy, None, None, None, None, None, None, None


def bias_act_cuda(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """bias_act_reference's result computed by our kernel (see the module docstring)."""
    _, alpha_value, gain_value = resolve_activation(act, alpha, gain)
    ext = _extension_for(x, "bias_act")
    if ext is None or act not in ACTIVATION_CODES:
        return bias_act_reference(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    if b is not None:
        if b.ndim != 1 or x.ndim == 0 or not -x.ndim <= dim < x.ndim or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dimension {dim} of {tuple(x.shape)}")
        dim = dim % x.ndim
        b = b.to(device=x.device, dtype=x.dtype)  # differentiable: db comes back in b's dtype
    clamp_value = float(clamp) if clamp is not None and clamp >= 0 else -1.0
    return _BiasAct.apply(x, b, dim, ACTIVATION_CODES[act], alpha_value, gain_value, clamp_value)


# ---------------------------------------------------------------------------------------
# upfirdn2d
# ---------------------------------------------------------------------------------------


def upfirdn2d_grad_padding(
    filter_size: int, in_size: int, out_size: int, up: int, down: int, pad0: int
) -> tuple[int, int]:
    """Padding (before, after) along one axis of the upfirdn2d that computes the gradient.

    Forward along an axis: insert zeros (factor ``up``), pad by ``pad0`` in front, correlate
    with g (``filter_size`` taps), keep every ``down``-th sample (``out_size`` of them).
    Its adjoint, applied to the output gradient: insert zeros (factor ``down``), correlate
    with g reversed, which is a full correlation once ``filter_size - 1`` zeros are added in
    front, undo the padding (shift by ``pad0``), keep every ``up``-th sample. The trailing
    padding makes the result exactly ``in_size`` long:
    (out_size * down + before + after - filter_size) // up + 1 == in_size.
    """
    before = filter_size - 1 - pad0
    after = in_size * up - out_size * down + pad0
    return before, after


def _correlation_filter(f: torch.Tensor | None, x: torch.Tensor, flip_filter: bool, gain: float) -> torch.Tensor:
    """The 2-D [fh, fw] filter the kernel correlates with, in the kernel's sum dtype."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if f is None:
        f = torch.ones([1, 1])
    f = f.to(device=x.device, dtype=dtype)
    if f.ndim == 1:
        f = torch.outer(f, f)
    elif f.ndim != 2:
        raise ValueError(f"filter must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}")
    if not flip_filter:
        f = f.flip([0, 1])  # true convolution = correlation with the reversed filter
    return (f * gain).contiguous()


class _Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g, params):  # type: ignore[override]
        up_x, up_y, down_x, down_y, px0, px1, py0, py1 = params
        y = get_extension().upfirdn2d(x, g, up_x, up_y, down_x, down_y, px0, px1, py0, py1)
        ctx.save_for_backward(g)
        ctx.params = params
        ctx.sizes = (x.shape[3], x.shape[2], y.shape[3], y.shape[2])
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        (g,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        up_x, up_y, down_x, down_y, px0, _, py0, _ = ctx.params
        in_w, in_h, out_w, out_h = ctx.sizes
        fh, fw = g.shape
        gx0, gx1 = upfirdn2d_grad_padding(fw, in_w, out_w, up_x, down_x, px0)
        gy0, gy1 = upfirdn2d_grad_padding(fh, in_h, out_h, up_y, down_y, py0)
        grad_params = (down_x, down_y, up_x, up_y, gx0, gx1, gy0, gy1)
        return _Upfirdn2d.apply(dy, g.flip([0, 1]), grad_params), None, None


def upfirdn2d_cuda(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """upfirdn2d_reference's result computed by our kernel (see the module docstring)."""
    ext = _extension_for(x, "upfirdn2d")
    if ext is None:
        if f is None:
            f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
        return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    up_x, up_y = as_pair(up, "up")
    down_x, down_y = as_pair(down, "down")
    px0, px1, py0, py1 = as_padding(padding)
    if min(up_x, up_y, down_x, down_y) < 1:
        raise ValueError(f"up and down must be >= 1, got up={up!r}, down={down!r}")
    g = _correlation_filter(f, x, flip_filter, float(gain))
    return _Upfirdn2d.apply(x, g, (up_x, up_y, down_x, down_y, px0, px1, py0, py1))


__all__ = ["ACTIVATION_CODES", "bias_act_cuda", "upfirdn2d_cuda", "upfirdn2d_grad_padding"]
