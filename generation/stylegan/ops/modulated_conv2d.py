"""Modulated convolution with the layer's bias and activation: the readable reference
(Karras et al. 2020, section 2.2, equations 1-3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import dispatch


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, resample_filter: torch.Tensor, padding: int) -> torch.Tensor:
    """Transposed convolution with stride 2, then the FIR filter.

    x: [N, I, H, W]; weight: [O, I, k, k] -> [N, O, 2H, 2W] for padding k // 2. The FIR
    filter removes the aliasing that a strided transposed convolution alone would leave.
    """
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    pad = up2_filter_padding(weight.shape[-1], resample_filter.shape[-1], padding)
    return dispatch.upfirdn2d(x, resample_filter, padding=pad, gain=4)


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
    return dispatch.bias_act(x, bias, act=act, gain=gain, clamp=clamp)
