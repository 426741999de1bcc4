"""Metrics for a trained conditional generator, measured with our own small classifier.

Public Inception-based FID weights cannot be fetched here (and are licensed separately),
so every metric lives in the feature space of a small CNN that we train on the dataset
itself:

- ``classifier``: a 4-layer CNN with one softmax head per attribute (for the demo dataset:
  outfit family and gesture, from ``class_attributes``; else the class). Its accuracy on
  held-out renders is reported as the ceiling of the conditioning accuracies.
- ``conditioning accuracy``: generate images for each class, classify them, and count how
  often each attribute the generator was asked for is the one the classifier sees; at
  ``psi`` and again at the personas' default truncation (towards the model's truncation
  centre: each class's centre for the models trained here).
- ``Fréchet distance`` (Heusel et al. 2017) between Gaussian fits of the classifier's
  penultimate features on generated images and on held-out renders, class-balanced alike.
- ``layer influence``: for each W+ row, how often copying that row alone from a second
  latent (another class, every attribute different) carries the second latent's attribute
  over, as the classifier sees it. It tells which rows a look (outfit) or a pose
  (gesture) should edit, and which rows they must leave alone.
- ``diversity``: for fixed classes and many seeds, the mean pairwise distance of generated
  images (pixels in [0, 1], RMS; and classifier features) relative to the same measure on
  held-out renders of the same class (so the class, which seeds must not change, does not
  count as diversity: what is left is face, hair and the outfit within its family), and a
  nearest-neighbour duplicate check: the fraction of seeds whose nearest other seed (same
  class) is closer than ``duplicate_threshold`` RMS, a distance below which two renders
  look the same to a person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..generator import Generator
from ..latents import seed_to_z
from .augment import augment_translation
from .classifier import Classifier, attribute_vocab, class_targets
from .classifier import load_classifier as load_classifier  # the metrics' classifier, where callers look for it
from .classifier import save_classifier as save_classifier
from .dataset import ImageDataset
from .loop import grid_classes


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output [N, C, R, R] in nominal [-1, 1] -> uint8 [N, C, R, R] on the CPU."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.to(torch.float32) / 127.5 - 1 if images.dtype == torch.uint8 else images


def train_classifier(
    dataset: ImageDataset, epochs: int = 5, batch: int = 64, seed: int = 0, lr: float = 2e-3, log=None
) -> Classifier:
    """Train on every image of ``dataset`` (with small random shifts, never flips)."""
    if dataset.labels is None:
        raise ValueError("the classifier needs a labelled dataset (dataset.json)")
    vocab = attribute_vocab(dataset)
    targets = class_targets(dataset.class_names, dataset.class_attributes, vocab)[dataset.labels]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = Classifier(vocab, channels=dataset.channels)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
        steps = epochs * math.ceil(len(dataset) / batch)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
        classifier.train()
        for epoch in range(epochs):
            order = torch.randperm(len(dataset), generator=gen)
            total = 0.0
            for start in range(0, len(dataset), batch):
                idx = order[start : start + batch]
                x = augment_translation(_to_float(dataset.images[idx]), ratio=1 / 16, fill=1.0, generator=gen)
                _, logits = classifier(x)
                loss = sum(F.cross_entropy(head, targets[idx, i]) for i, head in enumerate(logits))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(idx)
            if log:
                log(f"classifier epoch {epoch + 1}/{epochs}: loss {total / len(dataset):.3f}")
    return classifier.eval()


@torch.no_grad()
def classify(classifier: Classifier, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, F] float64, predictions [N, num_attributes])."""
    feats, preds = [], []
    for start in range(0, images.shape[0], batch):
        f, logits = classifier(_to_float(images[start : start + batch]).cpu())
        feats.append(f.double())
        preds.append(torch.stack([head.argmax(dim=1) for head in logits], dim=1))
    return torch.cat(feats), torch.cat(preds)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussian fits to rows of a and b.

    Tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric
    PSD matrix, so only symmetric eigendecompositions are needed (no scipy)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(s_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = root_a @ s_b @ root_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_sqrt)


@torch.no_grad()
def generate(
    G: Generator, classes: list[int | None], seeds: list[int], psi: float = 1.0, batch: int = 64
) -> torch.Tensor:
    """uint8 images [len(seeds), C, R, R] for (class, seed) pairs, noise const."""
    device = G.device
    out = []
    for start in range(0, len(seeds), batch):
        s, cl = seeds[start : start + batch], classes[start : start + batch]
        z = torch.stack([seed_to_z(x, G.config.z_dim) for x in s]).to(device)
        c = None
        if G.config.c_dim:
            c = F.one_hot(torch.tensor(cl), G.config.c_dim).to(device, torch.float32)
        img = G(z, c, truncation_psi=psi, noise_mode="const")
        out.append(_to_uint8(img))
    return torch.cat(out)


def _mean_pairwise(x: torch.Tensor) -> float:
    d = torch.cdist(x, x)
    n = x.shape[0]
    return float(d.sum() / max(n * (n - 1), 1))


def conditioning_accuracy(
    G: Generator, classifier: Classifier, targets: torch.Tensor, classes: list[int], seeds: list[int], psi: float = 1.0
) -> tuple[dict[str, float], float]:
    """({attribute: fraction classified as asked}, fraction right on every attribute) for
    images of ``classes`` drawn from ``seeds``; targets: [c_dim, num_attributes]."""
    _, preds = classify(classifier, generate(G, classes, seeds, psi=psi))
    wanted = targets[torch.tensor(classes)]
    per_attribute = {a: float((preds[:, i] == wanted[:, i]).float().mean()) for i, a in enumerate(classifier.vocab)}
    return per_attribute, float((preds == wanted).all(dim=1).float().mean())


def nearest_other_distance(images: torch.Tensor) -> torch.Tensor:
    """[N]: each uint8 image's RMS pixel distance (in [0, 1] units) to its nearest other image."""
    pixels = images.to(torch.float32).flatten(1) / 255
    d = torch.cdist(pixels, pixels) / math.sqrt(pixels.shape[1])
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


@torch.no_grad()
def layer_influence(
    G: Generator, classifier: Classifier, targets: torch.Tensor, pairs: int = 64, psi: float = 0.7, seed: int = 0
) -> dict[str, list[float]]:
    """{attribute: [fraction carried over by row r for r in 0..num_ws-1]}.

    targets: [c_dim, num_attributes] (``class_targets``). Each pair is a latent of class
    a and one of class b with every attribute different; row r of b's W+ replaces a's."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(G.config.c_dim, (pairs * 4,), generator=gen)
    b = torch.randint(G.config.c_dim, (pairs * 4,), generator=gen)
    differ = (targets[a] != targets[b]).all(dim=1)
    a, b = a[differ][:pairs], b[differ][:pairs]
    n = len(a)
    z = torch.randn(2 * n, G.config.z_dim, generator=gen).to(G.device)
    c = F.one_hot(torch.cat([a, b]), G.config.c_dim).to(G.device, torch.float32)
    ws = G.mapping(z, c, truncation_psi=psi)
    ws_a, ws_b = ws[:n], ws[n:]
    carried = []
    for row in range(G.config.num_ws):
        mixed = ws_a.clone()
        mixed[:, row] = ws_b[:, row]
        img = G.synthesis(mixed, noise_mode="const")
        _, preds = classify(classifier, _to_uint8(img))
        carried.append((preds == targets[b]).float().mean(dim=0))
    per_row = torch.stack(carried)  # [num_ws, num_attributes]
    return {attribute: [round(float(v), 3) for v in per_row[:, i]] for i, attribute in enumerate(classifier.vocab)}


@dataclass
class MetricOptions:
    per_class: int = 10  # generated images per class for the conditioning accuracy
    diversity_seeds: int = 32
    diversity_classes: int = 4
    psi: float = 1.0
    truncated_psi: float = 0.7  # personas' default: conditioning accuracy is measured there too
    duplicate_threshold: float = 0.02  # RMS pixel distance in [0, 1] units
    seed_base: int = 1_000_000  # seeds used for evaluation: not the sample-grid seeds


def evaluate(
    G: Generator,
    classifier: Classifier,
    heldout: ImageDataset,
    options: MetricOptions | None = None,
) -> dict[str, Any]:
    """All metrics of one generator against the held-out renders."""
    options = options or MetricOptions()
    vocab = classifier.vocab
    results: dict[str, Any] = {"psi": options.psi}
    if heldout.labels is None:
        raise ValueError("the held-out dataset must be labelled")
    targets = class_targets(heldout.class_names, heldout.class_attributes, vocab)

    # The classifier's own accuracy on held-out renders: the ceiling.
    real_feats, real_preds = classify(classifier, heldout.images)
    real_targets = targets[heldout.labels]
    results["classifier_heldout_accuracy"] = {
        a: float((real_preds[:, i] == real_targets[:, i]).float().mean()) for i, a in enumerate(vocab)
    }

    c_dim = G.config.c_dim
    if c_dim and c_dim != len(heldout.class_names):
        raise ValueError(f"the generator has {c_dim} classes, the held-out dataset {len(heldout.class_names)}")
    # Conditioning accuracy: per_class images of every class.
    if c_dim:
        classes = [c for c in range(c_dim) for _ in range(options.per_class)]
        seeds = [options.seed_base + i for i in range(len(classes))]
        per_attribute, joint = conditioning_accuracy(G, classifier, targets, classes, seeds, psi=options.psi)
        results["conditioning_accuracy"] = per_attribute
        results["conditioning_accuracy_joint"] = joint
        truncated, _ = conditioning_accuracy(G, classifier, targets, classes, seeds, psi=options.truncated_psi)
        results["conditioning_accuracy_truncated"] = {
            "psi": options.truncated_psi,
            "truncation_centre": G.truncation_centre,
            "accuracy": truncated,
        }
        chance = {a: 1 / len(v) for a, v in vocab.items()}
        results["chance_accuracy"] = chance
        results["layer_influence"] = layer_influence(G, classifier, targets, psi=options.psi)

    # Fréchet distance against the held-out renders, with the held-out label distribution.
    n = len(heldout)
    fd_classes: list[int | None] = heldout.labels.tolist() if c_dim else [None] * n
    fake = generate(G, fd_classes, [options.seed_base * 2 + i for i in range(n)], psi=options.psi)
    fake_feats, _ = classify(classifier, fake)
    results["frechet_distance"] = frechet_distance(fake_feats.numpy(), real_feats.numpy())
    # The same statistic between two halves of the held-out set: the noise floor.
    half = n // 2
    if half >= 2:
        results["frechet_distance_real_halves"] = frechet_distance(real_feats[:half].numpy(), real_feats[half:].numpy())
    results["frechet_samples"] = n

    # Diversity across seeds for a few fixed classes.
    div_classes = grid_classes(c_dim, options.diversity_classes) if c_dim else [None]
    pixel_ratio, feature_ratio, duplicates, pixel_dists = [], [], [], []
    real_pixels = heldout.images.to(torch.float32).flatten(1) / 255
    dims = real_pixels.shape[1]
    for cls in div_classes:
        seeds = [options.seed_base * 3 + i for i in range(options.diversity_seeds)]
        imgs = generate(G, [cls] * len(seeds), seeds, psi=options.psi)
        pixels = imgs.to(torch.float32).flatten(1) / 255
        feats, _ = classify(classifier, imgs)
        spread = _mean_pairwise(pixels) / math.sqrt(dims)
        pixel_dists.append(spread)
        duplicates.append(float((nearest_other_distance(imgs) < options.duplicate_threshold).float().mean()))
        same_class = torch.arange(n) if cls is None else (heldout.labels == cls).nonzero().flatten()
        same_class = same_class[: options.diversity_seeds]
        if len(same_class) >= 2:
            pixel_ratio.append(spread / (_mean_pairwise(real_pixels[same_class]) / math.sqrt(dims)))
            feature_ratio.append(_mean_pairwise(feats.float()) / _mean_pairwise(real_feats[same_class].float()))
    if not pixel_ratio:
        raise ValueError("the held-out dataset needs at least two renders of each class measured for diversity")
    results["diversity"] = {
        "mean_pairwise_rms_pixel_distance": float(np.mean(pixel_dists)),
        "pixel_spread_vs_real": float(np.mean(pixel_ratio)),
        "feature_spread_vs_real": float(np.mean(feature_ratio)),
        "duplicate_fraction": float(np.mean(duplicates)),
        "duplicate_threshold_rms": options.duplicate_threshold,
        "seeds_per_class": options.diversity_seeds,
        "classes": div_classes,
    }
    return results
