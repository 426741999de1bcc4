"""The StyleGAN2 discriminator, "resnet" architecture (Karras et al. 2020, figure 7c and
appendix B), written from the papers.

- fromRGB (1×1 convolution) at the full resolution, then one residual block per
  resolution down to 8×8: two 3×3 convolutions, the second one down-sampling, plus a
  1×1 down-sampling skip connection, the sum scaled by sqrt(1/2) to keep the variance.
- Down-sampling low-pass filters with the same [1, 3, 3, 1] FIR filter as the generator
  (``ops.upfirdn2d``) before striding, so the discriminator cannot see aliasing.
- The 4×4 epilogue appends the minibatch standard deviation (Karras et al. 2018) so
  the discriminator can detect a batch of near-identical images (mode collapse),
  then a 3×3 convolution and two fully-connected layers.
- Class-conditional like StyleGAN2-ADA: the one-hot label c goes through its own small
  mapping network to an embedding ``cmap``, and the score is the projection
  <features, cmap> / sqrt(cmap_dim) (Miyato & Koyama 2018, "cGANs with Projection
  Discriminator").
- Optionally also an auxiliary classifier (Odena et al. 2017, "AC-GAN"): a linear head on
  the epilogue's features predicts the class of the image, trained on real images only,
  so that the generator can be taught to draw what tells the classes apart.
- Equalized learning rate: weights are stored at unit scale and multiplied by their He
  gain at run time, as in the generator.
- On CUDA the highest ``num_fp16_res`` resolutions may run in float16, activations
  clamped to ``conv_clamp``.

Input images [N, C, R, R] nominally in [-1, 1]; output logits [N, 1], and with
``classify=True`` also class logits [N, c_dim].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import ops
from ..config import MAX_CLASSES, MAX_DIM, MAX_MAPPING_LAYERS, ChannelSchedule, check_whole
from ..layers import FullyConnectedLayer
from ..mapping import normalize_2nd_moment


@dataclass(frozen=True)
class DiscriminatorConfig(ChannelSchedule):
    c_dim: int = 0
    img_resolution: int = 64
    img_channels: int = 3
    channel_base: int = 16384
    channel_max: int = 512
    cmap_dim: int | None = None  # projection size for conditional models (default: 4×4 channels)
    mapping_layers: int = 2  # layers of the label-embedding network
    aux_classifier: bool = False  # also predict the class (AC-GAN head); needs c_dim > 0
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)

    def __post_init__(self) -> None:
        self.check_schedule(8)
        check_whole("c_dim", self.c_dim, 0, MAX_CLASSES)
        check_whole("cmap_dim", self.cmap_dim, 1, MAX_DIM, optional=True)
        check_whole("mapping_layers", self.mapping_layers, 0, MAX_MAPPING_LAYERS)
        if not isinstance(self.aux_classifier, bool):
            raise ValueError(f"aux_classifier must be true or false, got {self.aux_classifier!r}")
        check_whole("mbstd_group_size", self.mbstd_group_size, 0, 64)
        check_whole("mbstd_num_channels", self.mbstd_num_channels, 0, 16)
        if self.mbstd_num_channels and self.channels(4) % self.mbstd_num_channels:
            raise ValueError(
                f"mbstd_num_channels must divide the {self.channels(4)} channels at 4×4, got {self.mbstd_num_channels}"
            )
        if self.aux_classifier and self.c_dim == 0:
            raise ValueError("an auxiliary classifier needs class labels (c_dim > 0)")
        object.__setattr__(self, "resample_filter", tuple(float(t) for t in self.resample_filter))
        self.check_size("discriminator")

    @property
    def block_resolutions(self) -> list[int]:
        """[R, R/2, ..., 8]: each block halves the resolution."""
        return [2**i for i in range(int(math.log2(self.img_resolution)), 2, -1)]

    @property
    def projection_dim(self) -> int:
        if self.c_dim == 0:
            return 0
        return self.channels(4) if self.cmap_dim is None else self.cmap_dim

    def parameter_count(self) -> int:
        """Numbers in the discriminator's state dict (see the classes below)."""
        count = 0
        for i, resolution in enumerate(self.block_resolutions):
            c_in, c_out = self.channels(resolution), self.channels(resolution // 2)
            if i == 0:
                count += self.img_channels * c_in + c_in  # fromrgb
            count += c_in * c_in * 9 + c_in  # conv0
            count += c_out * c_in * 9 + c_out  # conv1
            count += c_out * c_in  # skip (no bias)
        cmap = self.projection_dim
        if self.c_dim:
            count += self.c_dim * cmap + cmap + self.mapping_layers * (cmap * cmap + cmap)
        c4 = self.channels(4)
        count += c4 * (c4 + self.mbstd_num_channels) * 9 + c4  # epilogue conv
        count += c4 * 16 * c4 + c4  # fc
        count += c4 * (cmap or 1) + (cmap or 1)  # out
        if self.aux_classifier:
            count += c4 * self.c_dim + self.c_dim
        return count



def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass filter with f, then keep every second pixel: [N, C, H, W] -> [N, C, H/2, W/2]."""
    fw = f.shape[-1]
    p = (fw - 2) // 2, (fw - 1) // 2
    return ops.upfirdn2d(x, f, down=2, padding=[p[0], p[1], p[0], p[1]])


class Conv2dLayer(nn.Module):
    """Equalized-learning-rate convolution with optional FIR down-sampling by 2, bias,
    activation and clamp. x [N, I, H, W] -> [N, O, H / down, W / down]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        resample_filter: torch.Tensor | None = None,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.activation = activation
        self.down = down
        self.kernel_size = kernel_size
        self.conv_clamp = conv_clamp
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", resample_filter, persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        k = self.kernel_size
        if self.down == 2:
            f = self.resample_filter
            if k == 1:
                x = torch.nn.functional.conv2d(downsample2d(x, f), w)
            else:
                # Blur so that a k×k stride-2 convolution without padding halves the size:
                # (H + p0 + p1 - fw + 1 - k) / 2 + 1 = H / 2.
                total = f.shape[-1] - 1 + k - 2
                p0, p1 = (total + 1) // 2, total // 2
                x = ops.upfirdn2d(x, f, padding=[p0, p1, p0, p1])
                x = torch.nn.functional.conv2d(x, w, stride=2)
        else:
            x = torch.nn.functional.conv2d(x, w, padding=k // 2)
        act_gain = (math.sqrt(2) if self.activation == "lrelu" else 1.0) * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = None if self.bias is None else self.bias.to(x.dtype)
        return ops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


class DiscriminatorBlock(nn.Module):
    """One resolution: (x [N, I, R, R] or None, img [N, C, R, R]) -> x [N, O, R/2, R/2]."""

    def __init__(
        self, config: DiscriminatorConfig, resolution: int, resample_filter: torch.Tensor, first: bool
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.use_fp16 = resolution >= config.fp16_resolution
        in_channels = config.channels(resolution)
        out_channels = config.channels(resolution // 2)
        clamp = config.conv_clamp
        if first:
            self.fromrgb = Conv2dLayer(config.img_channels, in_channels, 1, activation="lrelu", conv_clamp=clamp)
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu", conv_clamp=clamp)
        self.conv1 = Conv2dLayer(
            in_channels, out_channels, 3, activation="lrelu", down=2, resample_filter=resample_filter, conv_clamp=clamp
        )
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        dtype = torch.float16 if self.use_fp16 and img.is_cuda else torch.float32
        if x is None:
            x = self.fromrgb(img.to(dtype))
        x = x.to(dtype)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(nn.Module):
    """Appends, per group of ``group_size`` samples, the standard deviation of the
    features averaged over channels and pixels: [N, C, H, W] -> [N, C + F, H, W]."""

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size > 0 else n
        if n % g != 0:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)  # [G, M, F, C/F, H, W]: sample i is in group i % M
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, F, C/F, H, W]
        y = y.mean(dim=[2, 3, 4])  # [M, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 features -> (logits [N, 1] (projected on cmap when conditional), class logits
    [N, c_dim] or None)."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        channels = config.channels(4)
        mbstd = config.mbstd_num_channels
        self.mbstd = MinibatchStdLayer(config.mbstd_group_size, mbstd) if mbstd else None
        self.conv = Conv2dLayer(channels + mbstd, channels, 3, activation="lrelu", conv_clamp=config.conv_clamp)
        self.fc = FullyConnectedLayer(channels * 16, channels, activation="lrelu")
        self.cmap_dim = config.projection_dim
        self.out = FullyConnectedLayer(channels, self.cmap_dim or 1)
        self.classifier = FullyConnectedLayer(channels, config.c_dim) if config.aux_classifier else None

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x.to(torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        features = self.fc(x.flatten(1))
        logits = self.out(features)
        if cmap is not None:
            logits = (logits * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        class_logits = self.classifier(features) if self.classifier is not None else None
        return logits, class_logits


class LabelMapping(nn.Module):
    """The discriminator's own mapping of the class label c [N, c_dim] -> cmap [N, cmap_dim]."""

    def __init__(self, c_dim: int, cmap_dim: int, num_layers: int) -> None:
        super().__init__()
        self.embed = FullyConnectedLayer(c_dim, cmap_dim)
        self.num_layers = num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(cmap_dim, cmap_dim, activation="lrelu", lr_multiplier=0.01))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(c.to(torch.float32)))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class Discriminator(nn.Module):
    """(img [N, C, R, R], c [N, c_dim] or None) -> logits [N, 1] (real: high); with
    ``classify=True`` (logits, class logits [N, c_dim]) from the auxiliary classifier."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.block_resolutions = config.block_resolutions
        resample_filter = ops.make_filter(config.resample_filter)
        for i, resolution in enumerate(self.block_resolutions):
            setattr(self, f"b{resolution}", DiscriminatorBlock(config, resolution, resample_filter, first=i == 0))
        if config.c_dim > 0:
            self.mapping = LabelMapping(config.c_dim, config.projection_dim, config.mapping_layers)
        self.b4 = DiscriminatorEpilogue(config)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, classify: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if classify and not cfg.aux_classifier:
            raise ValueError("this discriminator has no auxiliary classifier")
        expected = (cfg.img_channels, cfg.img_resolution, cfg.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"img must have shape [N, {', '.join(map(str, expected))}], got {tuple(img.shape)}")
        cmap = None
        if cfg.c_dim > 0:
            if c is None or c.shape != (img.shape[0], cfg.c_dim):
                raise ValueError(f"this discriminator is conditional: c must have shape [{img.shape[0]}, {cfg.c_dim}]")
            cmap = self.mapping(c)
        x = None
        for resolution in self.block_resolutions:
            x = getattr(self, f"b{resolution}")(x, img)
        logits, class_logits = self.b4(x, cmap)
        return (logits, class_logits) if classify else logits
