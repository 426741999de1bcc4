"""Building blocks of the generator (Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN", section 2: weight demodulation).

Parameters are stored at unit scale and multiplied by their He-init gain at run time
("equalized learning rate", Karras et al. 2018), so the stored tensors match the public
checkpoint format and import is a name mapping.
"""

from __future__ import annotations

import math

import numpy as np
import torch
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

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", noise_seeds: list | None = None
    ) -> torch.Tensor:
        """noise_seeds: with noise_mode "seeded", one per sample: None for the stored
        constant noise, an int for noise drawn from that seed (see seeded_noise)."""
        styles = self.affine(w)
        noise = None
        if noise_mode == "seeded":
            noise = self.seeded_noise(noise_seeds, x.shape[0]).to(x.device) * self.noise_strength
        elif noise_mode in ("random", "shared"):
            samples = x.shape[0] if noise_mode == "random" else 1
            noise = torch.randn(samples, 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(
                f"noise_mode must be 'const', 'seeded', 'random', 'shared' or 'none', got {noise_mode!r}"
            )
        return ops.modulated_conv2d(
            x,
            self.weight,
            styles,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            noise=noise,
            bias=self.bias,
            act="lrelu",
            gain=math.sqrt(2),
            clamp=self.conv_clamp,
        )


    def seeded_noise(self, noise_seeds: list | None, batch: int) -> torch.Tensor:
        """[N, 1, R, R] float32 on the CPU: sample i's noise is the stored constant
        when its seed is None, else a standard normal drawn by NumPy's PCG64 from
        (seed, resolution, up), so every device and batch composition gets the
        same noise for the same seed and layer."""
        if noise_seeds is None or len(noise_seeds) != batch:
            raise ValueError(f"noise_mode 'seeded' needs one noise seed (or None) per sample, {batch} in all")
        planes = []
        for seed in noise_seeds:
            if seed is None:
                planes.append(self.noise_const.detach().float().cpu())
            else:
                rng = np.random.default_rng([int(seed), self.resolution, self.up])
                planes.append(torch.from_numpy(rng.standard_normal((self.resolution, self.resolution), np.float32)))
        return torch.stack(planes)[:, None]


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
        return ops.modulated_conv2d(x, self.weight, styles, demodulate=False, bias=self.bias, clamp=self.conv_clamp)
