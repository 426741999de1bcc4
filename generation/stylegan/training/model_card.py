"""The model card written beside an exported generator (``MODEL_CARD.md``), with its
sample grids.

The card reads ``training.json`` (written by the training loop) and, when present,
``metrics.json`` (``python -m generation.stylegan.training metrics --out``), so it can be
rewritten at any time without retraining.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_generator
from ..generator import Generator
from .identity_metrics import GRID_CHANGES, identity_grid
from .loop import grid_classes, sample_grid, save_png

# Conditioning accuracy a default model must reach on the demo dataset's attributes.
CONDITIONING_TARGETS = {"outfit": 0.90, "gesture": 0.80}
GRID_PSI = 0.7
GRID_SEEDS = list(range(8))
DIVERSITY_SEEDS = list(range(100, 132))
PNG_SCALE = 2


def write_sample_grids(
    G: Generator, export_dir: Path, class_names: list[str], class_attributes: list[dict] | None = None
) -> dict[str, str]:
    """Render the card's grids into ``export_dir``; returns {file: caption}.

    ``samples.png``: one row per class (up to 8, spread over the classes), one column per
    seed 0-7. ``diversity.png``: 32 seeds of one class, to show that seeds differ.
    ``identity.png`` (outfit × gesture models): 8 personas, each under 6 looks and poses."""
    classes = grid_classes(len(class_names), rows=8)
    cpu = torch.device("cpu")
    save_png(sample_grid(G, classes, GRID_SEEDS, cpu, psi=GRID_PSI), export_dir / "samples.png", PNG_SCALE)
    cls = classes[len(classes) // 2]
    rows = [sample_grid(G, [cls], DIVERSITY_SEEDS[i : i + 8], cpu, psi=GRID_PSI) for i in range(0, 32, 8)]
    save_png(np.concatenate(rows), export_dir / "diversity.png", PNG_SCALE)
    row_names = ", ".join(class_names[c] for c in classes) if class_names else "unconditional"
    one = class_names[cls] if class_names else "unconditional"
    grids = {
        "samples.png": f"Rows: {row_names}. Columns: seeds 0–7. Truncation ψ {GRID_PSI}.",
        "diversity.png": f"Class {one}, seeds 100–131, ψ {GRID_PSI}: do different seeds give different people?",
    }
    if class_attributes and {"outfit", "gesture"} <= set(class_attributes[0]):
        identity_grid(G, class_attributes, export_dir / "identity.png", psi=GRID_PSI)
        changes = ", ".join(f"{attribute} {value}" for attribute, value in GRID_CHANGES)
        grids["identity.png"] = (
            f"Rows: 8 personas (seeds 1000–1007, ψ {GRID_PSI}, a class drawn from each seed). Columns: the persona, "
            f"then each relabelled by a look or pose — {changes}. The same person in every column?"
        )
    return grids


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _metrics_lines(metrics: dict[str, Any]) -> list[str]:
    lines = ["| metric | value | target |", "| --- | --- | --- |"]
    for attribute, value in (metrics.get("conditioning_accuracy") or {}).items():
        target = CONDITIONING_TARGETS.get(attribute)
        verdict = "" if target is None else f"≥ {_percent(target)} {'met' if value >= target else 'NOT met'}"
        chance = (metrics.get("chance_accuracy") or {}).get(attribute)
        chance_note = f" (chance {_percent(chance)})" if chance else ""
        lines.append(f"| Conditioning accuracy, {attribute}{chance_note} | {_percent(value)} | {verdict} |")
    truncated = metrics.get("conditioning_accuracy_truncated") or {}
    # Metrics measured before they recorded the centre were all measured towards the class's.
    towards = "the global mean w_avg" if truncated.get("truncation_centre") == "global" else "the class's centre"
    for attribute, value in (truncated.get("accuracy") or {}).items():
        lines.append(
            f"| Conditioning accuracy, {attribute}, truncated to ψ {truncated['psi']} "
            f"(personas' default; towards {towards}) | {_percent(value)} | |"
        )
    if "conditioning_accuracy_joint" in metrics:
        joint = _percent(metrics["conditioning_accuracy_joint"])
        lines.append(f"| Conditioning accuracy, all attributes at once | {joint} | |")
    for attribute, value in (metrics.get("classifier_heldout_accuracy") or {}).items():
        lines.append(f"| Classifier accuracy on held-out renders, {attribute} (the ceiling) | {_percent(value)} | |")
    if "frechet_distance" in metrics:
        floor = metrics.get("frechet_distance_real_halves")
        floor_note = f" (two halves of the held-out renders: {floor:.2f})" if floor is not None else ""
        lines.append(
            f"| Fréchet distance in the classifier's features, {metrics['frechet_samples']} images{floor_note} "
            f"| {metrics['frechet_distance']:.2f} | lower is better |"
        )
    diversity = metrics.get("diversity") or {}
    if diversity:
        lines += [
            "| Diversity: pixel spread across seeds / same-class real spread | "
            f"{diversity['pixel_spread_vs_real']:.2f} | about 1 |",
            "| Diversity: feature spread across seeds / same-class real spread | "
            f"{diversity['feature_spread_vs_real']:.2f} | about 1 |",
            f"| Seeds whose nearest other seed is a near-duplicate (RMS < {diversity['duplicate_threshold_rms']}) "
            f"| {_percent(diversity['duplicate_fraction'])} | 0% |",
        ]
    influence = metrics.get("layer_influence") or {}
    if influence:
        num_rows = len(next(iter(influence.values())))
        lines += [
            "",
            "Layer influence: how often copying one W+ row alone from a latent whose every attribute differs "
            "carries that attribute over (chance is about the chance accuracy above):",
            "",
            "| attribute | " + " | ".join(f"row {r}" for r in range(num_rows)) + " |",
            "| --- |" + " --- |" * num_rows,
            *(f"| {a} | " + " | ".join(f"{v:.2f}" for v in values) + " |" for a, values in influence.items()),
        ]
    psi = metrics.get("psi", 1.0)
    lines += ["", f"Measured at truncation ψ {psi} with `python -m generation.stylegan.training metrics`."]
    return lines


def _dataset_lines(info: dict[str, Any]) -> list[str]:
    source = info.get("dataset_source") if isinstance(info.get("dataset_source"), dict) else {}
    lines = [f"- Images: {info['dataset_images']}"]
    if source.get("style") == "notionists":
        packages = ", ".join(f"{k} {v}" for k, v in (source.get("packages") or {}).items())
        lines += [
            f"- DiceBear `notionists` avatars rendered by us ({packages}), {source['size']}×{source['size']}, "
            f"never flipped; labels exact (outfit family × gesture).",
            f"- Regenerate: `python -m generation.stylegan.training dataset OUT_DIR --count {source['count']} "
            f"--size {source['size']} --seed {source['seed']} --gesture-probability {source['gesture_probability']:g}`",
        ]
    else:
        lines.append(f"- Folder: `{info['dataset']}`")
    licence = source.get("license") or {}
    if licence:
        lines.append(f"- Licence: {licence.get('name')} ({licence.get('url', '')}). {licence.get('text', '').strip()}")
    return lines


def _lineage_lines(info: dict[str, Any]) -> list[str]:
    parent = info.get("initialized_from")
    if not parent:
        return []
    return [
        f"- Fine-tuned from generator `{parent['weights_sha256'][:12]}…` (with a new discriminator): "
        f"{info['images_seen_total']} images seen and {info['train_seconds_total'] / 3600:.2f} h of training in all"
    ]


def _identity_lines(export_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The identity embedding's held-out verification and the looks-and-poses targets."""
    lines = []
    meta_path = export_dir / "identity" / "identity.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        heldout = meta.get("heldout", {})
        same, different = heldout.get("same_person", {}), heldout.get("different_person", {})
        lines += [
            "", "## Identity", "",
            f"Identity embedding (`identity/`, {meta.get('data', '')}; {meta.get('steps')} steps): on "
            f"{heldout.get('people')} held-out people × {heldout.get('views')} outfits/gestures, same-person "
            f"similarity median {same.get('median')} (5th percentile {same.get('p05')}), different people median "
            f"{different.get('median')} (95th percentile {different.get('p95')}); verification accuracy "
            f"{_percent(heldout.get('verification_accuracy', 0))} at threshold {meta['threshold']} (target ≥ 95%). "
            f"On a model whose personas it tells apart, the identity guard takes ≥ {meta.get('duplicate_threshold')} "
            f"for the same person "
            f"(held-out false matches {heldout.get('duplicate_false_match_rate')}).",
        ]  # fmt: skip
    looks = metrics.get("identity_looks")
    if looks:
        kept, different = looks["identity_kept"], looks["different_personas"]
        lines += [
            "",
            f"Looks and poses ({looks['personas']} personas × every other outfit and gesture = {looks['changes']} "
            f"changes, relabelled by the shift between class centres; `python bench/identity_looks.py`):",
            "",
            "| measure | value | target |",
            "| --- | --- | --- |",
            f"| changes keeping the person (similarity ≥ real same-person median {kept['real_same_person_median']}) "
            f"| {_percent(kept['share_at_or_above'])} | ≥ 90% {_met(kept['share_at_or_above'] >= 0.9)} |",
            f"| changes above the same-person threshold | {_percent(kept['share_above_threshold'])} | |",
            f"| similarity before/after, median (10th percentile) | {kept['similarity_median']} "
            f"({kept['similarity_p10']}) | |",
            f"| two different personas, median similarity | {different['similarity_median']} | below the real "
            f"different-person median {different['real_different_person_median']} "
            f"{_met(different['similarity_median'] < different['real_different_person_median'])} |",
            f"| outfit asked for, seen by the classifier | {_percent(looks['outfit_accuracy'])} | ≥ 90% "
            f"{_met(looks['outfit_accuracy'] >= 0.9)} |",
            f"| gesture asked for, seen by the classifier | {_percent(looks['gesture_accuracy'])} | ≥ 80% "
            f"{_met(looks['gesture_accuracy'] >= 0.8)} |",
        ]  # fmt: skip
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def write_model_card(export_dir: str | Path, *, name: str, licence_note: str) -> Path:
    """Render the sample grids and write ``MODEL_CARD.md`` from ``training.json`` (and
    ``metrics.json`` when present)."""
    export_dir = Path(export_dir)
    info: dict[str, Any] = json.loads((export_dir / "training.json").read_text())
    G = load_generator(export_dir, device="cpu")
    config = G.config
    class_names = info.get("class_names") or []
    grids = write_sample_grids(G, export_dir, class_names, info.get("class_attributes"))
    options = info.get("options") or {}
    lines = [
        f"# {name}",
        "",
        f"Licence of the weights: {licence_note}",
        "",
        "## Model",
        "",
        f"- StyleGAN2 generator (our engine), {config.img_resolution}×{config.img_resolution}, "
        f"z/w {config.z_dim}/{config.w_dim}, {config.mapping_layers} mapping layers, {config.num_ws} W+ rows, "
        f"channel base {config.channel_base}, at most {config.channel_max} channels, "
        f"{sum(p.numel() for p in G.parameters()) / 1e6:.2f}M parameters",
        f"- Classes: {len(class_names) or 'none (unconditional)'}"
        + (f" ({', '.join(class_names[:4])}, …)" if len(class_names) > 4 else ""),
        f"- Weights sha256: `{info['weights_sha256']}`",
        "",
        "## Training data",
        "",
        *_dataset_lines(info),
        "",
        "## Training",
        "",
        f"- Training images seen: {info['images_seen']} ({info['kimg']:.1f} kimg, {info['steps']} steps of batch "
        f"{options.get('batch', '?')})",
        *_lineage_lines(info),
        f"- Hardware: {info['hardware']}; precision {info['precision']}; torch {info['torch']}",
        f"- Training time: {info['train_seconds'] / 3600:.2f} h",
        f"- Losses: non-saturating logistic, lazy R1 (γ {info['r1_gamma']:g} every {options.get('r1_interval', '?')} "
        f"steps), style mixing {options.get('style_mixing', '?')}, augmentation "
        f"{options.get('augment') or 'none'}, auxiliary classifier weight {options.get('class_weight', 0):g}, "
        f"mode seeking weight {options.get('mode_seeking', 0):g}, "
        f"learning rates G {options.get('glr')} / D {options.get('dlr')}",
        "",
        "## Metrics",
        "",
    ]
    metrics_path = export_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        lines += _metrics_lines(metrics)
        lines += _identity_lines(export_dir, metrics)
    else:
        lines.append("Not measured yet: `python -m generation.stylegan.training metrics`.")
    lines += ["", "## Samples", ""]
    for file, caption in grids.items():
        lines += [f"![{file}]({file})", "", caption, ""]
    path = export_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
