"""Semantic directions in W, and applying them to W+ rows. No Django.

Three ways to find a direction, each returning unit vectors [k, w_dim] float32:

- ``sefa_directions`` (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in
  GANs", CVPR 2021): the style affine layers map w to per-channel styles, so the
  directions that change the styles most are the top eigenvectors of AᵀA, where A
  stacks the (column-normalised) affine weights of the layers driven by the chosen W+
  rows. No sampling, no training.
- ``ganspace_directions`` (Härkönen et al., "GANSpace", NeurIPS 2020): principal
  components of w sampled through the mapping network.
- ``interfacegan_direction`` (Shen et al., "InterFaceGAN", CVPR 2020): the unit normal
  of a linear boundary in W separating labelled samples, fitted here by logistic
  regression.

``strength_range`` turns a direction into a useful range of strengths: ±3 standard
deviations of sampled w projected on it, so a strength means the same amount of change
on every model. Applying a direction to chosen W+ rows is plain NumPy and lives with the
stored latents (``avatars.latents``), so web processes never load PyTorch for it.
"""

from __future__ import annotations

import numpy as np
import torch

from .generator import Generator
from .latents import class_label, seed_to_z


def affine_layers_by_row(G: Generator) -> dict[int, list[torch.nn.Module]]:
    """W+ row -> the style affine layers that read it (see SynthesisNetwork.forward)."""
    layers: dict[int, list[torch.nn.Module]] = {}
    first_row = 0
    for resolution in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{resolution}")
        convs = [block.conv1] if block.num_conv == 1 else [block.conv0, block.conv1]
        for offset, conv in enumerate(convs):
            layers.setdefault(first_row + offset, []).append(conv.affine)
        layers.setdefault(first_row + block.num_conv, []).append(block.torgb.affine)
        first_row += block.num_conv
    return layers


def sefa_directions(G: Generator, rows: list[int], k: int) -> np.ndarray:
    """The top-``k`` SeFa directions [k, w_dim] of the layers that read ``rows``."""
    by_row = affine_layers_by_row(G)
    unknown = [row for row in rows if row not in by_row]
    if not rows or unknown:
        raise ValueError(f"W+ rows {unknown or rows} are not rows of this generator (0..{G.config.num_ws - 1})")
    # Each affine weight is [channels, w_dim]; SeFa normalises each channel's row.
    weights = [layer.weight.detach().cpu().double().numpy() for row in rows for layer in by_row[row]]
    stacked = np.concatenate([w / np.linalg.norm(w, axis=1, keepdims=True) for w in weights])
    eigenvalues, eigenvectors = np.linalg.eigh(stacked.T @ stacked)
    order = np.argsort(eigenvalues)[::-1][:k]
    return _unit(eigenvectors[:, order].T)


def seeds_to_w(
    G: Generator,
    seeds: list[int],
    class_index: int | None = None,
    truncation_psi: float = 1.0,
    truncation_centre: str | None = None,
) -> np.ndarray:
    """w [len(seeds), w_dim] of the personas of ``seeds`` (one row of W+ each);
    ``truncation_centre``: None for the model's own."""
    z = torch.stack([seed_to_z(s, G.config.z_dim) for s in seeds]).to(G.device)
    c = class_label(G.config, class_index)
    c = None if c is None else c[None].repeat(len(seeds), 1).to(G.device)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_centre=truncation_centre)
    return ws[:, 0].cpu().numpy().astype(np.float32)


def sample_w(
    G: Generator,
    n: int,
    seed: int,
    class_index: int | None = None,
    truncation_psi: float = 1.0,
    truncation_centre: str | None = None,
) -> np.ndarray:
    """w [n, w_dim] for ``n`` consecutive seeds from ``seed``."""
    return seeds_to_w(G, list(range(seed, seed + n)), class_index, truncation_psi, truncation_centre)


def ganspace_directions(w: np.ndarray, k: int) -> np.ndarray:
    """The top-``k`` principal components [k, w_dim] of samples ``w`` [n, w_dim]."""
    centred = w.astype(np.float64) - w.mean(axis=0, dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(eigenvalues)[::-1][:k]
    return _unit(eigenvectors[:, order].T)


def interfacegan_direction(w: np.ndarray, labels: np.ndarray, steps: int = 200) -> np.ndarray:
    """Unit normal [w_dim] of the logistic-regression boundary separating ``w`` [n,
    w_dim] with labels 1 from those with 0; it points towards label 1."""
    labels = np.asarray(labels)
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError("labels must contain both 0 and 1 (one sample of each class at least)")
    x = torch.from_numpy(w).double()
    mean, std = x.mean(dim=0), x.std(dim=0) + 1e-8
    x = (x - mean) / std
    y = torch.from_numpy(labels.astype(np.float64))
    normal = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([normal, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        optimiser.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(x @ normal + bias, y)
        value = value + 1e-3 * normal.square().sum()  # keeps separable data from diverging
        value.backward()
        return value

    optimiser.step(loss)
    # The boundary was fitted on standardised w; map its normal back to W.
    return _unit((normal.detach() / std).numpy()[None])[0]


def strength_range(w: np.ndarray, direction: np.ndarray, sigmas: float = 3.0) -> tuple[float, float]:
    """(-s, s) with s = ``sigmas`` standard deviations of ``w`` [n, w_dim] along ``direction``."""
    spread = float(np.std(w.astype(np.float64) @ direction.astype(np.float64)))
    return -sigmas * spread, sigmas * spread


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)
