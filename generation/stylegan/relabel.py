"""Looks and poses on a class-conditional generator: the same person under a new label.

On a conditional model the outfit and the gesture come from the class label c, which
enters only the mapping network, w = f(z, c); no W+ row carries them alone (copying
rows from another seed changes the person and barely the outfit). So a look or a pose
changes the persona's label and keeps everything the persona's latent says beyond its
label:

    relabel(w+, c_from -> c_to) = w+ + (centre(c_to) - centre(c_from))      (every row)

with centre(c) the class centre in W (the mean of f(z, c) over a fixed set of z: the
point class-conditional truncation pulls towards). A persona made from a seed at ψ is
centre(c) + ψ (f(z, c) - centre(c)): relabelling keeps its offset from its class's
centre — which is where the seed, and every edit made since, put it — and moves the
centre. The generator is trained so that this offset means the same person under
every label (generation.stylegan.training.losses, the identity term); the identity
embedding measures it (bench/identity_looks.py).

``remap`` is the other candidate, kept for comparison in that benchmark: map the
persona's own z again under the new label, f(z, c_to), truncate it, and carry the edits
made since (w+ minus the seed's own latent). It needs the seed, which bred personas
do not have.
"""

from __future__ import annotations

import torch

from .generator import Generator


@torch.no_grad()
def label_shift(G: Generator, c_from: torch.Tensor, c_to: torch.Tensor) -> torch.Tensor:
    """c_from, c_to: one-hot [N, c_dim] -> the shift [N, 1, w_dim] from one class centre to the other."""
    if G.config.c_dim == 0:
        raise ValueError("this generator is unconditional: looks and poses there are W+ rows, not labels")
    return (G.mapping.class_centres(c_to) - G.mapping.class_centres(c_from)).unsqueeze(1)


def relabel(G: Generator, ws: torch.Tensor, c_from: torch.Tensor, c_to: torch.Tensor) -> torch.Tensor:
    """W+ [N, num_ws, w_dim] of personas labelled c_from -> the same personas under c_to."""
    return ws + label_shift(G, c_from, c_to).to(ws.dtype)


@torch.no_grad()
def remap(
    G: Generator, z: torch.Tensor, ws: torch.Tensor, c_from: torch.Tensor, c_to: torch.Tensor, psi: float
) -> torch.Tensor:
    """Seeds z [N, z_dim] whose personas are now ws under c_from -> f(z, c_to) at ψ plus the edits."""
    edits = ws - G.mapping(z, c_from, truncation_psi=psi)
    return G.mapping(z, c_to, truncation_psi=psi) + edits
