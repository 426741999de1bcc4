"""The synthesis network g: W+ -> image, in the "skip" architecture of StyleGAN2
(paper figure 7): each resolution's block adds its toRGB output to the up-sampled
image of the block below.
"""

from __future__ import annotations

import torch
from torch import nn

from . import ops
from .config import GeneratorConfig
from .layers import SynthesisLayer, ToRGBLayer


class SynthesisBlock(nn.Module):
    """The layers of one resolution.

    At 4×4: a learned constant and one convolution. Above: an up-sampling convolution
    and a plain one. Every block has a toRGB layer. Consumes ``num_conv + 1`` rows of
    W+; its toRGB row is the next block's first row.
    """

    def __init__(self, config: GeneratorConfig, resolution: int, resample_filter: torch.Tensor) -> None:
        super().__init__()
        self.resolution = resolution
        self.use_fp16 = resolution >= config.fp16_resolution
        out_channels = config.channels(resolution)
        layer_kwargs = dict(
            w_dim=config.w_dim, resolution=resolution, conv_clamp=config.conv_clamp, resample_filter=resample_filter
        )
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.num_conv = 1
        else:
            in_channels = config.channels(resolution // 2)
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv = 2
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.torgb = ToRGBLayer(out_channels, config.img_channels, config.w_dim, conv_clamp=config.conv_clamp)
        self.register_buffer("resample_filter", resample_filter, persistent=False)

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noise_seeds: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [N, I, R/2, R/2] features (None at 4×4); img: [N, C, R/2, R/2] or None;
        ws: [N, num_conv + 1, w_dim] -> (x [N, O, R, R], img float32 [N, C, R, R])."""
        dtype = torch.float16 if self.use_fp16 and ws.is_cuda else torch.float32
        if self.resolution == 4:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode, noise_seeds=noise_seeds)
        else:
            x = x.to(dtype)
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, noise_seeds=noise_seeds)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, noise_seeds=noise_seeds)
        y = self.torgb(x, ws[:, self.num_conv]).to(torch.float32)
        img = y if img is None else ops.upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ [N, num_ws, w_dim] -> image [N, img_channels, R, R], nominally in [-1, 1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.num_ws = config.num_ws
        self.w_dim = config.w_dim
        self.block_resolutions = config.block_resolutions
        resample_filter = ops.make_filter(config.resample_filter)
        for resolution in self.block_resolutions:
            setattr(self, f"b{resolution}", SynthesisBlock(config, resolution, resample_filter))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", noise_seeds: list | None = None) -> torch.Tensor:
        """noise_seeds: with noise_mode "seeded", [N] ints or None (see SynthesisLayer.seeded_noise)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        first_row = 0
        for resolution in self.block_resolutions:
            block = getattr(self, f"b{resolution}")
            rows = ws[:, first_row : first_row + block.num_conv + 1]
            x, img = block(x, img, rows, noise_mode=noise_mode, noise_seeds=noise_seeds)
            first_row += block.num_conv
        return img
