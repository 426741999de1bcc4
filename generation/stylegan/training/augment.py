"""Differentiable augmentation for small datasets, after Zhao et al. 2020,
"Differentiable Augmentation for Data-Efficient GAN Training".

The same random transformations are applied to real and generated images before the
discriminator sees them, and gradients flow through them to the generator, so the
discriminator cannot memorise a small training set while the generator still learns the
un-augmented distribution.

Policies (comma-separated in ``policy``):

- ``color``: per-sample brightness (+U[-0.5, 0.5]), saturation (×U[0, 2]) and contrast
  (×U[0.5, 1.5]).
- ``translation``: per-sample integer shift of up to 1/8 of the image size in x and y,
  the uncovered border filled with ``fill`` (white for our white-background renders).
- ``cutout``: per-sample blanking of a square half the image size at a random place.

There is deliberately no horizontal flip: our labels (which hand gestures, asymmetric
outfits) are not mirror-invariant, and a flipped training image would teach the
generator mirrored personas.

Every op draws from ``generator`` (a ``torch.Generator`` on the images' device, or the
global RNG), so a seeded run is reproducible. Images are [N, C, H, W] in about [-1, 1].
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | None) -> tuple[str, ...]:
    if not policy:
        return ()
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    return names


def _rand(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=x.device, dtype=torch.float32, generator=generator).to(x.dtype)


def augment_color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    n = x.shape[0]
    x = x + (_rand(n, x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(n, x, generator) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (_rand(n, x, generator) + 0.5) + mean
    return x


def augment_translation(
    x: torch.Tensor, ratio: float = 0.125, fill: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; differentiable w.r.t. x (a gather)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # source row of each output row
    cols = torch.arange(w, device=x.device)[None, None, :] - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # [N, 1, H, W]
    index = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)  # [N, H, W]
    flat = x.flatten(2)
    gathered = flat.gather(2, index.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1)).view_as(x)
    return torch.where(inside, gathered, torch.full_like(gathered, fill))


def augment_cutout(
    x: torch.Tensor, ratio: float = 0.5, fill: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h, (n, 1, 1), device=x.device, generator=generator)  # the square's centre
    cx = torch.randint(0, w, (n, 1, 1), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    covered = (rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch) & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw)
    return torch.where(covered.unsqueeze(1), torch.full_like(x, fill), x)


def diff_augment(
    x: torch.Tensor,
    policy: str | tuple[str, ...] | None,
    generator: torch.Generator | None = None,
    fill: float = 1.0,
) -> torch.Tensor:
    """Apply the ``policy`` ops in order; the identity for an empty policy."""
    names = parse_policy(policy) if isinstance(policy, str) or policy is None else policy
    for name in names:
        if name == "color":
            x = augment_color(x, generator)
        elif name == "translation":
            x = augment_translation(x, fill=fill, generator=generator)
        elif name == "cutout":
            x = augment_cutout(x, generator=generator)
    return x
