"""The architecture hyper-parameters of a StyleGAN2 generator."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

# Where truncation pulls w (see GeneratorConfig.truncation_centre).
TRUNCATION_CENTRES = ("global", "class")


class ChannelSchedule:
    """What generator and discriminator configs share: the StyleGAN2 paper's feature-map
    schedule, ``min(channel_base // res, channel_max)`` maps at resolution ``res``,
    float16 (on CUDA) for the last ``num_fp16_res`` resolutions, and JSON round trips."""

    img_resolution: int
    channel_base: int
    channel_max: int
    num_fp16_res: int

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

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
        if self.truncation_centre not in TRUNCATION_CENTRES:
            raise ValueError(f"truncation_centre must be 'global' or 'class', got {self.truncation_centre!r}")
        log2 = math.log2(self.img_resolution) if self.img_resolution > 0 else 0
        if self.img_resolution < 4 or log2 != int(log2):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {self.img_resolution}")
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers", "channel_base", "channel_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.c_dim < 0 or self.num_fp16_res < 0:
            raise ValueError("c_dim and num_fp16_res must not be negative")
        object.__setattr__(self, "resample_filter", tuple(float(t) for t in self.resample_filter))

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

