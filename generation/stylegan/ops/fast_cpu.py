"""The fast CPU path: the same mathematics as the references, arranged for CPUs.

Profiling the reference at 256×256 showed that per image, batch 8 ran slower than
batch 1, and that the time went not to the 3×3 convolutions' arithmetic but to memory:
oneDNN reorders every NCHW activation into its blocked layout and back, its depthwise
FIR convolution degrades sharply on large NCHW batches, and each element-wise step
(padding, demodulation, noise, bias, activation, gain) streams the whole activation
through memory again. So this path
- keeps activations channels-last (NHWC), which oneDNN convolves without reorders,
- runs 1×1 (toRGB) convolutions as a batched matrix product with per-sample weights,
- filters with depthwise convolutions that pad by themselves, or with a strided
  transposed depthwise convolution for up-sampling, never materialising zero-stuffed or
  padded copies,
- fuses demodulation, noise, bias and gain into one multiply-add and applies the
  activation in place (leaky ReLU is positively homogeneous: act(g·y) = g·act(y)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .bias_act import resolve_activation
from .modulated_conv2d import demodulation_coefficients, up2_filter_padding
from .upfirdn2d import IntPair, as_padding, as_pair, filter_size, upfirdn2d_reference

CHANNELS_LAST = torch.channels_last


def _depthwise_filter(f: torch.Tensor, channels: int, gain: float, flip_filter: bool, dtype: torch.dtype) -> torch.Tensor:
    """f ([k] or [kh, kw]) -> a depthwise weight [C, 1, kh, kw] for true convolution."""
    f2d = torch.outer(f, f) if f.ndim == 1 else f
    f2d = f2d.to(dtype) * gain
    if not flip_filter:
        f2d = f2d.flip([0, 1])
    return f2d[None, None].expand(channels, 1, *f2d.shape).contiguous()


def upfirdn2d_fast(
    x: torch.Tensor,
    f: torch.Tensor,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """upfirdn2d for the cases the synthesis network uses; others go to the reference.

    Plain filtering with symmetric padding is a depthwise convolution. Up-sampling by u
    with padding (p0, p1) is a transposed depthwise convolution with stride u: input
    pixel i lands at u*i + p0 in the zero-stuffed, padded signal, which a transposed
    convolution reproduces with padding k - 1 - p0 and output padding p1 - p0 - 1 + u.
    """
    upx, upy = as_pair(up, "up")
    downx, downy = as_pair(down, "down")
    px0, px1, py0, py1 = as_padding(padding)
    fw, fh = filter_size(f)
    channels = x.shape[1]
    x = x.contiguous(memory_format=CHANNELS_LAST)
    if (upx, upy, downx, downy) == (1, 1, 1, 1) and px0 == px1 >= 0 and py0 == py1 >= 0:
        weight = _depthwise_filter(f, channels, gain, flip_filter, x.dtype)
        return F.conv2d(x, weight, padding=(py0, px0), groups=channels)
    if upx == upy > 1 and (downx, downy) == (1, 1) and (px0, px1) == (py0, py1):
        pad = fw - 1 - px0
        output_padding = px1 - px0 - 1 + upx
        if fh == fw and 0 <= pad and 0 <= output_padding < upx:
            # A transposed convolution already is a true convolution of the stuffed signal,
            # so its weight is the filter unflipped.
            weight = _depthwise_filter(f, channels, gain, not flip_filter, x.dtype)
            return F.conv_transpose2d(
                x, weight, stride=upx, padding=pad, output_padding=output_padding, groups=channels
            )
    return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


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
    """Same contract as ``modulated_conv2d_reference``; returns a channels-last tensor."""
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
