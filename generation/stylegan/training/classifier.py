"""The small attribute classifier the metrics measure with (and a second one, the
identity term's teacher, trains against): a 4-layer CNN with one softmax head per
attribute, saved as safetensors + JSON. Kept apart from the metrics so that the
training loop can load one without importing the metrics (which import the loop).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .dataset import ImageDataset

CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_META = "classifier.json"


def attribute_vocab(dataset: ImageDataset) -> dict[str, list[str]]:
    """{attribute: [values]} the classifier predicts, from the dataset's classes."""
    if dataset.class_attributes and len(dataset.class_attributes) == dataset.c_dim:
        names = list(dataset.class_attributes[0])
        return {n: sorted({str(a[n]) for a in dataset.class_attributes}) for n in names}
    return {"class": list(dataset.class_names)}


def class_targets(
    class_names: list[str], class_attributes: list[dict[str, Any]], vocab: dict[str, list[str]]
) -> torch.Tensor:
    """[num_classes, num_attributes] value index of each attribute for each class."""
    rows = []
    for i, name in enumerate(class_names):
        attrs = class_attributes[i] if class_attributes else {"class": name}
        rows.append([vocab[a].index(str(attrs[a])) for a in vocab])
    return torch.tensor(rows, dtype=torch.int64)


class Classifier(nn.Module):
    """uint8-range images [N, C, R, R] in [-1, 1] -> (features [N, F], logits per attribute)."""

    def __init__(self, vocab: dict[str, list[str]], channels: int = 3, width: int = 32, features: int = 128) -> None:
        super().__init__()
        self.vocab = vocab
        self.width = width
        self.feature_dim = features
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
            nn.Conv2d(width * 2, width * 4, 3, stride=2, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(),
            nn.Conv2d(width * 4, features, 3, stride=2, padding=1), nn.BatchNorm2d(features), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(features * 4, features), nn.ReLU(),
        )  # fmt: skip
        self.heads = nn.ModuleList(nn.Linear(features, len(values)) for values in vocab.values())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f = self.body(x)
        return f, [head(f) for head in self.heads]


def save_classifier(classifier: Classifier, directory: Path, info: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
    save_file(tensors, str(directory / CLASSIFIER_WEIGHTS))
    meta = {"vocab": classifier.vocab, "width": classifier.width, "features": classifier.feature_dim, **info}
    (directory / CLASSIFIER_META).write_text(json.dumps(meta, indent=1) + "\n")


def load_classifier(directory: Path, channels: int = 3) -> tuple[Classifier, dict[str, Any]]:
    meta = json.loads((directory / CLASSIFIER_META).read_text())
    classifier = Classifier(meta["vocab"], channels=channels, width=meta["width"], features=meta["features"])
    classifier.load_state_dict(load_file(str(directory / CLASSIFIER_WEIGHTS)))
    return classifier.eval(), meta
