"""Modulated convolution with the layer's bias and activation (Karras et al. 2020,
section 2.2, equations 1-3): a composite of the primitive ops, so it sits above them and
above the dispatcher that picks their kernels (imports point downwards only)::

    modulated_conv2d.py  ->  dispatch.py  ->  bias_act.py, upfirdn2d.py, fast_cpu.py, cuda/

- ``modulated_conv2d_reference``: the readable reference, on the dispatched primitives;
- ``modulated_conv2d_fast``: the fast CPU inference path (channels-last, 1×1 convolutions
  as one batched matrix product, demodulation, noise, bias and gain fused into one
  multiply-add, the activation applied in place; see ``fast_cpu.py`` for why);
- ``modulated_conv2d``: picks one of the two per call, as ``dispatch`` does for the
  primitives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .bias_act import resolve_activation
from .dispatch import bias_act, implementation, upfirdn2d
from .fast_cpu import CHANNELS_LAST, upfirdn2d_fast


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, resample_filter: torch.Tensor, padding: int) -> torch.Tensor:
    """Transposed convolution with stride 2, then the FIR filter.

    x: [N, I, H, W]; weight: [O, I, k, k] -> [N, O, 2H, 2W] for padding k // 2. The FIR
    filter removes the aliasing that a strided transposed convolution alone would leave.
    """
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    pad = up2_filter_padding(weight.shape[-1], resample_filter.shape[-1], padding)
    return upfirdn2d(x, resample_filter, padding=pad, gain=4)


def up2_filter_padding(kernel_size: int, filter_size: int, padding: int) -> list[int]:
    """The FIR padding that makes a stride-2 transposed convolution's output [2H, 2W].

    The transposed convolution yields 2H + k - 2 samples; the filter of length f needs
    2H + f - 1, centred the way zero-stuffing then filtering would centre them.
    """
    pad0 = padding + (filter_size + 1) // 2 - (kernel_size - 1)
    pad1 = padding + (filter_size - 2) // 2 - (kernel_size - 2)
    return [pad0, pad1, pad0, pad1]


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """1 / ||w'||_2 per sample and output channel, w' = weight scaled by the styles.

    weight: [O, I, k, k]; styles: [N, I] -> [N, O].

    ||w'||^2 = sum_i styles[n, i]^2 * sum_kk weight[o, i]^2: one [N, I] × [I, O] product
    instead of materialising the [N, O, I, k, k] modulated weights.
    """
    energy = styles.square() @ weight.square().sum(dim=[2, 3]).t()
    return (energy + 1e-8).rsqrt()


def fp16_prescale(weight: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale weight and styles so that float16 neither overflows nor underflows;
    demodulation cancels any per-output-channel scale, so the result is unchanged."""
    weight = weight * (1 / math.sqrt(weight[0].numel()) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
    styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    return weight, styles


def modulated_conv2d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """act(demod(conv(x * styles, weight)) + noise + bias) * gain, clamped.

    x: [N, I, H, W]; weight: [O, I, k, k]; styles: [N, I]; noise: broadcastable to the
    output; bias: [O] -> [N, O, H * up, W * up].

    Scaling the activations rather than the weights keeps one weight for the whole
    batch, so the batch goes through one ordinary convolution instead of N grouped ones.
    """
    if x.dtype == torch.float16 and demodulate:
        weight, styles = fp16_prescale(weight, styles)
    x = x * styles.to(x.dtype)[:, :, None, None]
    w = weight.to(x.dtype)
    if up == 1:
        x = F.conv2d(x, w, padding=padding)
    elif up == 2:
        x = conv2d_up2(x, w, resample_filter, padding)
    else:
        raise ValueError(f"only up=1 and up=2 are supported, got up={up}")
    if demodulate:
        x = x * demodulation_coefficients(weight, styles).to(x.dtype)[:, :, None, None]
    if noise is not None:
        x = x + noise.to(x.dtype)
    return bias_act(x, bias, act=act, gain=gain, clamp=clamp)


def pointwise_modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """A 1×1 modulated convolution as one batched matrix product with per-sample weights.

    x: [N, I, H, W] channels-last; weight: [O, I, 1, 1]; styles: [N, I] -> [N, O, H, W]
    channels-last. Modulating the small weight instead of the activations saves a pass
    over the largest activation of the network (toRGB at full resolution).
    """
    n, i, h, w = x.shape
    per_sample = weight[None, :, :, 0, 0] * styles[:, None, :]  # [N, O, I]
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, i)  # a view of channels-last memory
    out = torch.bmm(pixels, per_sample.transpose(1, 2))  # [N, H*W, O]
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def modulated_conv2d_fast(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Same contract as ``modulated_conv2d_reference``; returns a channels-last tensor.
    CPU inference only: it updates its intermediate tensors in place."""
    _, alpha, gain = resolve_activation(act, None, gain)
    x = x.contiguous(memory_format=CHANNELS_LAST)
    if weight.shape[-2:] == (1, 1) and up == 1:
        x = pointwise_modulated_conv(x, weight, styles)
    elif up == 1:
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
    elif up == 2:
        x = F.conv_transpose2d(x * styles[:, :, None, None], weight.transpose(0, 1), stride=2)
        pad = up2_filter_padding(weight.shape[-1], resample_filter.shape[-1], padding)
        x = upfirdn2d_fast(x, resample_filter, padding=pad, gain=4)
    else:
        raise ValueError(f"only up=1 and up=2 are supported, got up={up}")

    n, o = x.shape[:2]
    scale = torch.full((n, o), gain, dtype=x.dtype)
    if demodulate:
        scale = scale * demodulation_coefficients(weight, styles)
    offset = torch.zeros((), dtype=x.dtype)
    if noise is not None:
        offset = offset + noise * gain
    if bias is not None:
        offset = offset + (bias * gain)[:, None, None]
    # Every operand in the same (channels-last) layout keeps the loop vectorized.
    offset = offset.expand(torch.broadcast_shapes(offset.shape, (1, *x.shape[1:])))
    offset = offset.contiguous(memory_format=CHANNELS_LAST)
    x = torch.addcmul(offset, x, scale[:, :, None, None], out=x)
    if act == "lrelu":
        F.leaky_relu_(x, alpha)
    elif act == "relu":
        F.relu_(x)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, **kwargs) -> torch.Tensor:
    """Modulated convolution + bias + activation on the path ``dispatch`` picks for x:
    the fast CPU path for CPU inference, else the reference (whose primitives run our
    CUDA kernels on CUDA tensors)."""
    if implementation(x) == "fast_cpu":
        return modulated_conv2d_fast(x, weight, styles, **kwargs)
    return modulated_conv2d_reference(x, weight, styles, **kwargs)
