"""The architecture hyper-parameters of a StyleGAN2 generator, and their bounds.

Every field is checked when a config is made (also when read from a checkpoint's JSON or
a .pkl's constructor arguments), before any network is built: a value outside its range
raises ValueError with one line naming the field and the range. Then the size of the
network's state (parameters and buffers, float32) is computed from the config alone,
and a config above ``MAX_PARAMETER_BYTES`` is refused too, so that an absurd checkpoint
fails at once instead of trying to allocate terabytes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Where truncation pulls w (see GeneratorConfig.truncation_centre).
TRUNCATION_CENTRES = ("global", "class")

# Bounds. The largest public StyleGAN2 generators (1024², config F: channel_base 32768,
# channel_max 512, z/w 512, 8 mapping layers) hold 30 M parameters, 0.12 GiB in float32.
MIN_RESOLUTION, MAX_RESOLUTION = 4, 2048
MAX_IMG_CHANNELS = 4  # grey, grey + alpha, RGB, RGBA
MAX_CHANNEL_BASE = 2**20
MAX_CHANNELS = 1024  # channel_max
MAX_DIM = 2048  # z_dim, w_dim, embed_features, the discriminator's cmap_dim
MAX_CLASSES = 4096  # c_dim
MAX_MAPPING_LAYERS = 16
MAX_FP16_RES = 10  # every block of a 2048² network
MAX_CONV_CLAMP = 65504.0  # float16's largest finite value
MAX_FILTER_TAPS = 8
MAX_LR_MULTIPLIER = 10.0
BYTES_PER_PARAMETER = 4  # float32, as checkpoints store them
MAX_PARAMETER_BYTES = 2**30  # 1 GiB: over 8 times config F


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_whole(name: str, value: Any, low: int, high: int, optional: bool = False) -> None:
    """``value`` is an int in low..high (or None, if optional); else ValueError."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        none = " or null" if optional else ""
        raise ValueError(f"{name} must be a whole number in {low}..{high}{none}, got {_shown(value)}")


def check_power_of_two(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or value & (value - 1):
        raise ValueError(f"{name} must be a power of two from {low} to {high}, got {_shown(value)}")


def check_positive_number(name: str, value: Any, high: float, optional: bool = False) -> None:
    """``value`` is a finite real number in (0, high] (or None, if optional)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= high:  # NaN fails too
        none = " or null" if optional else ""
        raise ValueError(f"{name} must be a number in (0, {high:g}]{none}, got {_shown(value)}")


def check_filter(name: str, value: Any) -> None:
    """1 to MAX_FILTER_TAPS finite taps whose sum is not zero (the filter is normalised by it)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and 1 <= len(value) <= MAX_FILTER_TAPS
    ok = ok and all(not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t) for t in value)
    if not ok or sum(value) == 0:
        raise ValueError(
            f"{name} must be a list of 1..{MAX_FILTER_TAPS} finite taps with a non-zero sum, got {_shown(value)}"
        )


class ChannelSchedule:
    """What generator and discriminator configs share: the StyleGAN2 paper's feature-map
    schedule, ``min(channel_base // res, channel_max)`` maps at resolution ``res``,
    float16 (on CUDA) for the last ``num_fp16_res`` resolutions, and JSON round trips."""

    img_resolution: int
    img_channels: int
    channel_base: int
    channel_max: int
    num_fp16_res: int
    conv_clamp: float | None
    resample_filter: tuple[float, ...]

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def check_schedule(self, min_resolution: int) -> None:
        """The bounds of the fields both configs share (ValueError naming the field)."""
        check_power_of_two("img_resolution", self.img_resolution, min_resolution, MAX_RESOLUTION)
        check_whole("img_channels", self.img_channels, 1, MAX_IMG_CHANNELS)
        # At least one feature map at the highest resolution, so every layer has channels.
        check_whole("channel_base", self.channel_base, self.img_resolution, MAX_CHANNEL_BASE)
        check_whole("channel_max", self.channel_max, 1, MAX_CHANNELS)
        check_whole("num_fp16_res", self.num_fp16_res, 0, MAX_FP16_RES)
        check_positive_number("conv_clamp", self.conv_clamp, MAX_CONV_CLAMP, optional=True)
        check_filter("resample_filter", self.resample_filter)

    def parameter_count(self) -> int:
        """Numbers in the network's state (parameters and persistent buffers)."""
        raise NotImplementedError

    @property
    def parameter_bytes(self) -> int:
        """The network's state in float32 bytes, computed from the config alone."""
        return self.parameter_count() * BYTES_PER_PARAMETER

    def check_size(self, network: str) -> None:
        """Refuse a network whose state would exceed ``MAX_PARAMETER_BYTES``."""
        size = self.parameter_bytes
        if size > MAX_PARAMETER_BYTES:
            raise ValueError(
                f"this {network} would hold {self.parameter_count():,} parameters ({size / 2**30:.1f} GiB in float32), "
                f"more than the {MAX_PARAMETER_BYTES / 2**30:g} GiB allowed; reduce img_resolution, channel_base, "
                "channel_max or the dimensions"
            )

    @property
    def fp16_resolution(self) -> int:
        """The lowest resolution whose block runs in float16 on CUDA."""
        return max(2 ** (int(math.log2(self.img_resolution)) + 1 - self.num_fp16_res), 8)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (a dataclass's fields)."""
        data = dataclasses.asdict(self)
        data["resample_filter"] = list(self.resample_filter)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class GeneratorConfig(ChannelSchedule):
    """Everything needed to rebuild a generator; saved beside its weights as JSON.

    Channels follow ``ChannelSchedule``; float16 layers (CUDA only; always float32 on
    CPU) clamp their activations to ``conv_clamp``.

    ``truncation_centre`` is a property of the model, not of its architecture: where
    truncation pulls w. ``"global"``: towards ``w_avg``, the tracked mean of w (the
    StyleGAN2 paper's and NVIDIA's code's truncation; what every imported .pkl
    checkpoint does). ``"class"``: a conditional generator pulls each w towards the
    centre of its own class (StyleGAN-XL), so a truncated latent keeps its class; what
    the models trained here do. Unconditional generators have one centre, ``w_avg``,
    either way. How a saved config without the field is read: ``checkpoint.read_config``.
    """

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    img_resolution: int = 256
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    embed_features: int | None = None
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    truncation_centre: str = "global"

    def __post_init__(self) -> None:
        self.check_schedule(MIN_RESOLUTION)
        check_whole("z_dim", self.z_dim, 1, MAX_DIM)
        check_whole("w_dim", self.w_dim, 1, MAX_DIM)
        check_whole("c_dim", self.c_dim, 0, MAX_CLASSES)
        check_whole("mapping_layers", self.mapping_layers, 1, MAX_MAPPING_LAYERS)
        check_positive_number("mapping_lr_multiplier", self.mapping_lr_multiplier, MAX_LR_MULTIPLIER)
        check_whole("embed_features", self.embed_features, 1, MAX_DIM, optional=True)
        if self.truncation_centre not in TRUNCATION_CENTRES:
            raise ValueError(f"truncation_centre must be 'global' or 'class', got {_shown(self.truncation_centre)}")
        object.__setattr__(self, "resample_filter", tuple(float(t) for t in self.resample_filter))
        self.check_size("generator")

    @property
    def block_resolutions(self) -> list[int]:
        """[4, 8, ..., img_resolution]."""
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    @property
    def mapping_embed_features(self) -> int:
        if self.c_dim == 0:
            return 0
        return self.w_dim if self.embed_features is None else self.embed_features

    @property
    def num_ws(self) -> int:
        """Rows of W+: one per convolution layer plus the last toRGB layer."""
        return 2 * len(self.block_resolutions)

    def parameter_count(self) -> int:
        """Numbers in the generator's state dict (see mapping.py, synthesis.py, layers.py)."""
        w, e = self.w_dim, self.mapping_embed_features
        count = w  # w_avg
        if self.c_dim:
            count += self.c_dim * e + e  # embed
        features = [self.z_dim + e] + [w] * self.mapping_layers
        count += sum(i * o + o for i, o in zip(features[:-1], features[1:], strict=True))

        def synthesis_layer(i: int, o: int, resolution: int) -> int:
            # affine, 3×3 weight, bias, noise strength, stored noise
            return (w * i + i) + o * i * 9 + o + 1 + resolution * resolution

        for resolution in self.block_resolutions:
            o = self.channels(resolution)
            if resolution == 4:
                count += o * 16  # const
            else:
                count += synthesis_layer(self.channels(resolution // 2), o, resolution)  # conv0
            count += synthesis_layer(o, o, resolution)  # conv1
            count += (w * o + o) + self.img_channels * o + self.img_channels  # torgb
        return count

