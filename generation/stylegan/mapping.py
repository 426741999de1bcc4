"""The mapping network f: Z (× C) -> W, with the truncation trick."""

from __future__ import annotations

import torch
from torch import nn

from .config import TRUNCATION_CENTRES, GeneratorConfig
from .layers import FullyConnectedLayer

# Enough samples that two estimates of a class centre agree to about 1/32 of w's spread.
CLASS_CENTRE_SAMPLES = 1024


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of x [N, D] to unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """An MLP of ``mapping_layers`` leaky-ReLU layers from z (and an embedded class
    label c) to the intermediate latent w, broadcast to the ``num_ws`` rows of W+.

    Truncation pulls w towards a centre, trading variety for typicality (psi = 1: no
    truncation; psi = 0: the centre itself). Which centre is the model's
    ``truncation_centre`` (from its config), or the one a call asks for:

    - ``"global"``: ``w_avg``, the mean of w tracked over training: w_avg + psi (w - w_avg),
      as the StyleGAN2 paper and NVIDIA's code truncate (imported checkpoints);
    - ``"class"``: a conditional generator pulls each w towards the centre of its own
      class (class-conditional truncation, Sauer et al. 2022, StyleGAN-XL): the global
      mean lies between the classes, so truncating towards it fades the very outfit or
      pose the label asked for (models trained here). Unconditionally: ``w_avg``.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim = config.z_dim
        self.c_dim = config.c_dim
        self.num_ws = config.num_ws
        embed_features = config.mapping_embed_features
        if config.c_dim > 0:
            self.embed = FullyConnectedLayer(config.c_dim, embed_features)
        features = [config.z_dim + embed_features] + [config.w_dim] * config.mapping_layers
        for i, (in_features, out_features) in enumerate(zip(features[:-1], features[1:], strict=True)):
            layer = FullyConnectedLayer(
                in_features, out_features, activation="lrelu", lr_multiplier=config.mapping_lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
        self.num_layers = config.mapping_layers
        self.truncation_centre = config.truncation_centre
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        truncation_centre: str | None = None,
    ) -> torch.Tensor:
        """z: [N, z_dim]; c: [N, c_dim] or None -> W+ [N, num_ws, w_dim].

        ``truncation_centre``: "global" or "class" for this call; None: the model's own.
        """
        if truncation_centre is None:
            truncation_centre = self.truncation_centre
        elif truncation_centre not in TRUNCATION_CENTRES:
            raise ValueError(f"truncation_centre must be 'global' or 'class', got {truncation_centre!r}")
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
        if self.c_dim > 0 and (c is None or c.ndim != 2 or c.shape != (z.shape[0], self.c_dim)):
            shape = None if c is None else tuple(c.shape)
            raise ValueError(
                f"this generator is conditional: c must have shape [{z.shape[0]}, {self.c_dim}], got {shape}"
            )
        ws = self.map(z, c).unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi == 1:
            return ws
        if truncation_centre == "class" and self.c_dim > 0:
            centre = self.class_centres(c).unsqueeze(1)
        else:
            centre = self.w_avg
        return truncate(ws, centre, truncation_psi, truncation_cutoff)

    def map(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """z: [N, z_dim]; c: [N, c_dim] or None (unconditional) -> w [N, w_dim]."""
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x

    @torch.no_grad()
    def class_centres(self, c: torch.Tensor) -> torch.Tensor:
        """c: [N, c_dim] -> [N, w_dim]: the centre in W of each row's class, the mean of
        f(z, c) over a fixed set of ``CLASS_CENTRE_SAMPLES`` z (so it is deterministic)."""
        z = torch.randn(CLASS_CENTRE_SAMPLES, self.z_dim, generator=torch.Generator().manual_seed(0)).to(c.device)
        labels, row_label = torch.unique(c.to(torch.float32), dim=0, return_inverse=True)
        centres = torch.stack([self.map(z, label.expand(len(z), -1)).mean(dim=0) for label in labels])
        return centres[row_label]


def truncate(ws: torch.Tensor, centre: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """centre + psi * (w - centre) on the first ``cutoff`` rows of W+ [N, num_ws, w_dim];
    centre: [w_dim], or [N, 1, w_dim] for one centre per latent."""
    ws = ws.clone()
    rows = slice(None) if cutoff is None else slice(0, cutoff)
    ws[:, rows] = centre.lerp(ws[:, rows], psi)
    return ws
