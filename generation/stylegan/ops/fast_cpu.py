"""The fast CPU path of the primitive ops: the same mathematics as the references,
arranged for CPUs.

Profiling the reference at 256×256 showed that per image, batch 8 ran slower than
batch 1, and that the time went not to the 3×3 convolutions' arithmetic but to memory:
oneDNN reorders every NCHW activation into its blocked layout and back, its depthwise
FIR convolution degrades sharply on large NCHW batches, and each element-wise step
(padding, demodulation, noise, bias, activation, gain) streams the whole activation
through memory again. So the fast path
- keeps activations channels-last (NHWC), which oneDNN convolves without reorders,
- filters with depthwise convolutions that pad by themselves, or with a strided
  transposed depthwise convolution for up-sampling, never materialising zero-stuffed or
  padded copies (``upfirdn2d_fast``, here),
- and, in the modulated convolution built on top of these ops
  (``modulated_conv2d.modulated_conv2d_fast``), runs 1×1 convolutions as a batched matrix
  product and fuses demodulation, noise, bias and gain into one multiply-add.

This module depends only on the reference primitives below it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .upfirdn2d import IntPair, as_padding, as_pair, filter_size, upfirdn2d_reference

CHANNELS_LAST = torch.channels_last


def _depthwise_filter(
    f: torch.Tensor, channels: int, gain: float, flip_filter: bool, dtype: torch.dtype
) -> torch.Tensor:
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
