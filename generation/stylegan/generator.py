"""The generator G = synthesis ∘ mapping."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .config import GeneratorConfig
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class Generator(nn.Module):
    """(z [N, z_dim], c [N, c_dim]) -> image [N, img_channels, R, R]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    @property
    def truncation_centre(self) -> str:
        """Where this model's truncation pulls w: "global" (w_avg) or "class" (its class's
        centre); recorded in its config and saved with it."""
        return self.mapping.truncation_centre

    def set_truncation_centre(self, centre: str) -> Generator:
        """Make ``centre`` this model's own truncation centre (its config records it)."""
        self.config = dataclasses.replace(self.config, truncation_centre=centre)  # validates
        self.mapping.truncation_centre = centre
        return self

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        truncation_centre: str | None = None,
    ) -> torch.Tensor:
        ws = self.mapping(
            z,
            c,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            truncation_centre=truncation_centre,
        )
        return self.synthesis(ws, noise_mode=noise_mode)


def random_generator(config: GeneratorConfig, seed: int) -> Generator:
    """A generator with seeded random weights: the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(config)
    return generator.eval().requires_grad_(False)
