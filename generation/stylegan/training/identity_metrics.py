"""Does a look or a pose keep the person? Measured with the identity embedding.

For ``personas`` seeds (each with a class drawn from the seed, at ψ 0.7 like a new
persona) and every look (outfit family) and pose (gesture) that differs from the
persona's own, the persona is relabelled (generation.stylegan.relabel) and rendered:

- **identity kept**: the embedding similarity of before and after, against the median
  of real same-person pairs that differ in outfit or gesture (the measure's
  calibration): the share of changes at or above it (target ≥ 90%);
- **people stay apart**: the similarity of two different personas (same class, so
  only the person differs), whose median must stay below the real different-person
  median;
- **the attribute asked for**: the metrics classifier reads the changed attribute on
  the render (targets ≥ 90% outfit, ≥ 80% gesture), and the other one kept.

Images are generated with constant noise. ``identity_grid`` draws 8 personas (rows) ×
6 looks and poses (columns) after their reference column.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..generator import Generator
from ..identity import IdentityMeasure
from ..latents import images_to_uint8, seed_to_z
from ..relabel import relabel, remap
from .metrics import Classifier, classify

MECHANISMS = ("shift", "remap")
GRID_CHANGES = (("outfit", "dark_jacket"), ("outfit", "tie"), ("outfit", "light_jacket"),
                ("gesture", "handPhone"), ("gesture", "waveLongArms"), ("gesture", "point"))  # fmt: skip


def _one_hot(G: Generator, labels: list[int]) -> torch.Tensor:
    return F.one_hot(torch.tensor(labels), G.config.c_dim).to(G.device, torch.float32)


def changed_class(class_attributes: list[dict], label: int, attribute: str, value: str) -> int:
    """The class with ``attribute`` set to ``value`` and the other attributes of ``label``."""
    wanted = {**class_attributes[label], attribute: value}
    return class_attributes.index(wanted)


@torch.no_grad()
def _render(G: Generator, ws: torch.Tensor, batch: int = 256) -> np.ndarray:
    return np.concatenate([images_to_uint8(G.synthesis(ws[i : i + batch], noise_mode="const"))
                           for i in range(0, len(ws), batch)])  # fmt: skip


def persona_seeds(G: Generator, personas: int, psi: float, first_seed: int = 0):
    """(z [P, z_dim], labels [P], W+ [P, num_ws, w_dim]) of seeds first_seed.. with a class each."""
    seeds = list(range(first_seed, first_seed + personas))
    labels = [int(np.random.RandomState(seed).randint(G.config.c_dim)) for seed in seeds]
    z = torch.stack([seed_to_z(seed, G.config.z_dim) for seed in seeds]).to(G.device)
    with torch.no_grad():
        ws = G.mapping(z, _one_hot(G, labels), truncation_psi=psi)
    return z, labels, ws


@torch.no_grad()
def identity_looks_evaluate(
    G: Generator,
    measure: IdentityMeasure,
    classifier: Classifier,
    class_attributes: list[dict],
    personas: int = 200,
    psi: float = 0.7,
    mechanism: str = "shift",
) -> dict:
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {', '.join(MECHANISMS)}")
    vocab = classifier.vocab
    z, labels, ws = persona_seeds(G, personas, psi)
    before = _render(G, ws)
    before_embedding = measure.embed(before)
    rows = []  # (persona, attribute, target class)
    for p, label in enumerate(labels):
        for attribute, values in vocab.items():
            for value in values:
                if value != class_attributes[label][attribute]:
                    rows.append((p, attribute, changed_class(class_attributes, label, attribute, value)))
    index = torch.tensor([p for p, _, _ in rows], device=G.device)
    c_from = _one_hot(G, [labels[p] for p, _, _ in rows])
    c_to = _one_hot(G, [target for _, _, target in rows])
    if mechanism == "shift":
        changed = relabel(G, ws[index], c_from, c_to)
    else:
        changed = remap(G, z[index], ws[index], c_from, c_to, psi)
    after = _render(G, changed)
    similarity = (measure.embed(after) * before_embedding[index.cpu().numpy()]).sum(axis=1)
    _, predicted = classify(classifier, torch.from_numpy(after).permute(0, 3, 1, 2))
    names = list(vocab)
    target_values = torch.tensor([[vocab[a].index(class_attributes[t][a]) for a in names] for _, _, t in rows])
    hit = predicted == target_values
    result = {"mechanism": mechanism, "personas": personas, "psi": psi, "changes": len(rows)}
    same_median = measure.calibration.same_person_median
    result["identity_kept"] = {
        "similarity_median": round(float(np.median(similarity)), 4),
        "similarity_p10": round(float(np.quantile(similarity, 0.1)), 4),
        "real_same_person_median": same_median,
        "share_at_or_above": round(float((similarity >= same_median).mean()), 4),
        "share_above_threshold": round(float((similarity >= measure.calibration.threshold).mean()), 4),
    }
    for i, attribute in enumerate(names):
        asked = np.array([a == attribute for _, a, _ in rows])
        other = [j for j in range(len(names)) if j != i]
        result[f"{attribute}_accuracy"] = round(float(hit[asked, i].float().mean()), 4)
        result[f"{attribute}_change_keeps_the_rest"] = round(float(hit[asked][:, other].all(dim=1).float().mean()), 4)
        result[f"{attribute}_identity_kept_share"] = round(float((similarity[asked] >= same_median).mean()), 4)
    # Different people, same class: pair persona p with persona p+1 of the same class, re-mapped.
    others_z = torch.stack([seed_to_z(10**6 + p, G.config.z_dim) for p in range(personas)]).to(G.device)
    others = _render(G, G.mapping(others_z, _one_hot(G, labels), truncation_psi=psi))
    different = (measure.embed(others) * before_embedding).sum(axis=1)
    result["different_personas"] = {
        "similarity_median": round(float(np.median(different)), 4),
        "real_different_person_median": measure.calibration.different_person_median,
        "share_above_threshold": round(float((different >= measure.calibration.threshold).mean()), 4),
    }
    return result


@torch.no_grad()
def identity_grid(G: Generator, class_attributes: list[dict], path, personas: int = 8, psi: float = 0.7) -> None:
    """PNG: per persona (row) its own render, then each of GRID_CHANGES applied by relabelling."""
    _, labels, ws = persona_seeds(G, personas, psi, first_seed=1000)
    columns = [ws]
    for attribute, value in GRID_CHANGES:
        targets = [changed_class(class_attributes, label, attribute, value) for label in labels]
        columns.append(relabel(G, ws, _one_hot(G, labels), _one_hot(G, targets)))
    images = _render(G, torch.cat(columns))  # column-major
    size = images.shape[1]
    header = 14
    sheet = Image.new("RGB", ((len(columns)) * size, header + personas * size), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(["persona", *(value for _, value in GRID_CHANGES)]):
        draw.text((col * size + 2, 2), title[:10], fill="black")
        for row in range(personas):
            sheet.paste(Image.fromarray(images[col * personas + row]), (col * size, header + row * size))
    sheet.save(path)
