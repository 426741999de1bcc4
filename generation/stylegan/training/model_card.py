"""The model card written beside an exported generator (``MODEL_CARD.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_model_card(export_dir: str | Path, *, name: str, licence_note: str) -> Path:
    """Summarise ``training.json`` (and ``metrics.json`` when present) as Markdown."""
    export_dir = Path(export_dir)
    info: dict[str, Any] = json.loads((export_dir / "training.json").read_text())
    source = info.get("dataset_source") or {}
    dataset_licence = (source.get("license") or {}) if isinstance(source, dict) else {}
    lines = [
        f"# {name}",
        "",
        f"- Licence of the model: {licence_note}",
        f"- Training data: {info['dataset_images']} images from `{info['dataset']}`",
    ]
    if dataset_licence:
        lines.append(f"- Data licence: {dataset_licence.get('name')}: {dataset_licence.get('text', '').strip()}")
    lines += [
        f"- Training images seen: {info['images_seen']} ({info['kimg']:.1f} kimg, {info['steps']} steps)",
        f"- Hardware: {info['hardware']}; precision {info['precision']}; torch {info['torch']}",
        f"- Training time: {info['train_seconds'] / 3600:.2f} h",
        f"- Classes: {len(info.get('class_names') or [])} ({', '.join((info.get('class_names') or [])[:6])}"
        f"{' …' if len(info.get('class_names') or []) > 6 else ''})",
        f"- Weights sha256: `{info['weights_sha256']}`",
    ]
    metrics_path = export_dir / "metrics.json"
    if metrics_path.is_file():
        lines += ["", "## Metrics", "", "```json", metrics_path.read_text().strip(), "```"]
    else:
        lines += ["", "## Metrics", "", "Not measured yet: `python -m generation.stylegan.training metrics`."]
    path = export_dir / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
