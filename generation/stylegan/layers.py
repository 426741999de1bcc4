"""Building blocks of the generator (Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN", section 2: weight demodulation).

Parameters are stored at unit scale and multiplied by their He-init gain at run time
("equalized learning rate", Karras et al. 2018), so the stored tensors match the public
checkpoint format and import is a name mapping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import ops


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (weight * weight_gain).T + bias * bias_gain).

    x: [N, in_features] -> [N, out_features]. ``lr_multiplier`` slows the layer's learning
    (the mapping network uses 0.01) by storing parameters divided by it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)


def modulate(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sample style scales and demodulation coefficients (paper eq. 1-3).

    weight: [O, I, k, k]; styles: [N, I] -> (styles [N, I], dcoefs [N, O] or None).
    Demodulation divides each output channel by the L2 norm of its modulated weights so
    that activations keep unit standard deviation without instance normalization.
    """
    if weight.dtype == torch.float16 and demodulate:
        # Rescale before squaring so that float16 neither overflows nor underflows;
        # demodulation cancels any per-output-channel scale.
        in_size = weight[0].numel()
        weight = weight * (1 / math.sqrt(in_size) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    if not demodulate:
        return styles, None
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    return styles, dcoefs


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, resample_filter: torch.Tensor, padding: int) -> torch.Tensor:
    """Transposed convolution with stride 2 followed by the FIR filter.

    x: [N, I, H, W]; weight: [O, I, k, k] -> [N, O, 2H, 2W]. The FIR filter removes the
    aliasing that a strided transposed convolution alone would leave.
    """
    k = weight.shape[-1]
    fw, fh = ops.filter_size(resample_filter)
    pad0 = padding + (fw + 1) // 2 - (k - 1)
    pad1 = padding + (fw - 2) // 2 - (k - 2)
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    return ops.upfirdn2d(x, resample_filter, padding=[pad0, pad1, pad0, pad1], gain=4)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
) -> torch.Tensor:
    """Modulated convolution: scale input channels by the style, convolve with the
    shared weight, demodulate the output channels, add noise.

    x: [N, I, H, W]; weight: [O, I, k, k]; styles: [N, I]; noise: broadcastable to
    [N, O, H', W'] -> [N, O, H * up, W * up] (with padding k // 2).

    Scaling activations rather than weights keeps a single weight for the whole batch,
    so the batch goes through one ordinary convolution instead of N grouped ones.
    """
    styles, dcoefs = modulate(weight, styles, demodulate)
    x = x * styles.to(x.dtype)[:, :, None, None]
    weight = weight.to(x.dtype)
    if up == 1:
        x = F.conv2d(x, weight, padding=padding)
    elif up == 2:
        x = conv2d_up2(x, weight, resample_filter, padding)
    else:
        raise ValueError(f"only up=1 and up=2 are supported, got up={up}")
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype)[:, :, None, None]
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """One 3×3 modulated convolution with noise, bias and leaky ReLU.

    (x [N, I, H, W], w [N, w_dim]) -> [N, O, H * up, W * up].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        kernel_size: int = 3,
        conv_clamp: float | None = None,
        resample_filter: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.padding = kernel_size // 2
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", resample_filter, persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", gain: float = 1) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding, resample_filter=self.resample_filter
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias, act="lrelu", gain=math.sqrt(2) * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """1×1 modulated convolution without demodulation: features -> image channels.

    (x [N, I, H, W], w [N, w_dim]) -> [N, img_channels, H, W].
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return ops.bias_act(x, self.bias, clamp=self.conv_clamp)
