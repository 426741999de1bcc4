"""Training data: an image folder, optionally labelled, and the DiceBear demo dataset.

A dataset is a folder of images (PNG, JPEG or WebP, any depth below it). It is
*labelled* when it also holds ``dataset.json``::

    {
      "labels": {"images/000000.png": 3, ...},      # path relative to the folder -> class
      "class_names": ["jacket/hand", ...],           # one per class index
      "attributes": {"images/000000.png": {...}},    # optional, free-form
      "class_attributes": [{"outfit": ..., "gesture": ...}, ...]   # optional
    }

(``labels.json`` with the same content, or with only the ``{filename: class}`` mapping,
is accepted too.) Images are resized (Lanczos) to the training resolution if needed and
kept in memory as uint8.

The demo dataset renders DiceBear's "notionists" avatars (art CC0 1.0 by Zoish) with the
Python ports ``dicebear-core`` + ``dicebear-styles`` and rasterises them with
``resvg-py``: fully offline and deterministic for a given seed and package versions.
Each avatar's outfit (``clothes``, 25 variants, grouped into six visually distinct
families) and ``gesture`` (10 variants, or none) are chosen by us and passed to DiceBear
explicitly, so the labels are exact; everything else (hair, face, glasses, ...) comes from
DiceBear's own seeded PRNG. Avatars are never flipped. The class label a conditional
generator trains on is the pair (outfit family, gesture).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
LABEL_FILES = ("dataset.json", "labels.json")

# The 25 notionists outfits, grouped by what still shows at 64×64: large dark areas,
# a dark shirt under an open light jacket, light jackets, plain light tops, patterned
# tops, and shirts with a tie.
CLOTHES_FAMILIES: dict[str, tuple[str, ...]] = {
    "dark_jacket": ("variant02", "variant04", "variant06", "variant08", "variant17"),
    "dark_shirt": ("variant09", "variant10", "variant18"),
    "light_jacket": ("variant01", "variant03", "variant05", "variant07", "variant16"),
    "plain_top": ("variant11", "variant12", "variant13", "variant14", "variant21", "variant23", "variant25"),
    "patterned": ("variant15", "variant22", "variant24"),
    "tie": ("variant19", "variant20"),
}
GESTURES: tuple[str, ...] = (
    "hand",
    "handPhone",
    "ok",
    "okLongArm",
    "point",
    "pointLongArm",
    "waveLongArm",
    "waveLongArms",
    "waveOkLongArms",
    "wavePointLongArms",
)
NO_GESTURE = "none"
DEMO_PACKAGES = ("dicebear-core", "dicebear-styles", "resvg-py")

DEMO_LICENSE = """\
The images in this folder are renders of DiceBear's "notionists" avatar style.

Art: "Notionists" (https://heyzoish.gumroad.com/l/notionists) by Zoish
(https://bio.link/heyzoish), remixed by DiceBear, licensed under CC0 1.0 Universal
(https://creativecommons.org/publicdomain/zero/1.0/): dedicated to the public domain;
you can copy, modify and distribute it, even for commercial purposes, without asking
permission.

Rendered with the DiceBear Python packages (dicebear-core, dicebear-styles; MIT licence)
and resvg-py (MIT licence) by Persona Studio's `python -m generation.stylegan.training
dataset` command. The labels (dataset.json) are ours, also CC0 1.0.
"""


@dataclass
class ImageDataset:
    """Images [N, C, R, R] uint8 in memory, with optional class labels [N] (int64)."""

    root: Path
    files: list[str]
    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    class_attributes: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def c_dim(self) -> int:
        return len(self.class_names) if self.labels is not None else 0

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor | None:
        if self.c_dim == 0:
            return None
        return torch.nn.functional.one_hot(labels, self.c_dim).to(torch.float32)

    def batch(
        self, indices: torch.Tensor, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float32 in [-1, 1] [B, C, R, R], one-hot labels [B, c_dim] or None)."""
        img = self.images[indices].to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
        c = None if self.labels is None else self.one_hot(self.labels[indices]).to(device)
        return img, c


def _read_labels(root: Path) -> dict[str, Any] | None:
    for name in LABEL_FILES:
        path = root / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} is not valid JSON: {error}") from None
            if isinstance(data, dict) and "labels" not in data:
                data = {"labels": data}
            if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
                raise ValueError(f"{path} must hold a {{filename: class_index}} mapping under 'labels'")
            return data
    return None


def _load_image(path: Path, resolution: int | None, channels: int) -> np.ndarray:
    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB" if channels == 3 else "L")
        if image.width != image.height:
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        if resolution is not None and image.width != resolution:
            image = image.resize((resolution, resolution), Image.LANCZOS)
        array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def load_dataset(
    path: str | Path,
    resolution: int | None = None,
    channels: int = 3,
    max_images: int | None = None,
    labelled: bool = True,
) -> ImageDataset:
    """Load an image folder (labelled when it holds dataset.json/labels.json and ``labelled``)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"dataset folder not found: {root}")
    data = _read_labels(root) if labelled else None
    if data is not None:
        files = sorted(data["labels"])
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise ValueError(f"{root}: {len(missing)} labelled images are missing, e.g. {missing[0]}")
    else:
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if max_images is not None:
        files = files[:max_images]
    if not files:
        raise ValueError(f"no images in {root}")
    first = _load_image(root / files[0], resolution, channels)
    resolution = first.shape[0]
    log2 = np.log2(resolution)
    if resolution < 8 or log2 != int(log2):
        raise ValueError(f"image resolution must be a power of two >= 8, got {resolution} (pass --resolution)")
    images = np.empty((len(files), resolution, resolution, first.shape[2]), dtype=np.uint8)
    images[0] = first
    for i, name in enumerate(files[1:], start=1):
        images[i] = _load_image(root / name, resolution, channels)
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    if data is None:
        return ImageDataset(root=root, files=files, images=tensor)
    labels = torch.tensor([int(data["labels"][f]) for f in files], dtype=torch.int64)
    class_names = list(data.get("class_names") or [str(i) for i in range(int(labels.max()) + 1)])
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(f"{root}: class indices must lie in 0..{len(class_names) - 1}")
    return ImageDataset(
        root=root,
        files=files,
        images=tensor,
        labels=labels,
        class_names=class_names,
        class_attributes=list(data.get("class_attributes") or []),
        attributes=dict(data.get("attributes") or {}),
    )


# --------------------------------------------------------------------------------------
# The DiceBear "notionists" demo dataset
# --------------------------------------------------------------------------------------


def demo_classes(gesture_probability: float) -> tuple[list[str], list[dict[str, str]]]:
    """Class names and attributes of the (outfit family, gesture) pairs."""
    gestures = list(GESTURES) + ([NO_GESTURE] if gesture_probability < 100 else [])
    names, attributes = [], []
    for family in CLOTHES_FAMILIES:
        for gesture in gestures:
            names.append(f"{family}/{gesture}")
            attributes.append({"outfit": family, "gesture": gesture})
    return names, attributes


def package_versions() -> dict[str, str]:
    versions = {}
    for name in DEMO_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"the demo dataset needs the Python package {name} (pip install persona-studio's dependencies)"
            ) from None
    return versions


class NotionistsRenderer:
    """Renders one avatar from explicit attributes: deterministic for the same inputs."""

    def __init__(self) -> None:
        package_versions()
        from importlib.resources import files

        import resvg_py
        from dicebear import Avatar, Style

        self._avatar = Avatar
        self._resvg = resvg_py
        self.style = Style.from_json((files("dicebear_styles") / "notionists.json").read_text())
        meta = json.loads((files("dicebear_styles") / "notionists.json").read_text())["meta"]
        self.license = meta.get("license", {})

    def svg(self, seed: str, clothes: str, gesture: str) -> str:
        options: dict[str, Any] = {"seed": seed, "clothesVariant": clothes, "flip": "none"}
        if gesture == NO_GESTURE:
            options["gestureProbability"] = 0
        else:
            options.update(gestureProbability=100, gestureVariant=gesture)
        avatar = self._avatar(self.style, options)
        resolved = avatar.to_json()["options"]
        if resolved.get("clothesVariant") != clothes or resolved.get("gestureVariant", NO_GESTURE) != gesture:
            raise RuntimeError(
                f"DiceBear resolved {resolved.get('clothesVariant')}/{resolved.get('gestureVariant')}, "
                f"asked {clothes}/{gesture}"
            )
        return avatar.to_string()

    def render(self, seed: str, clothes: str, gesture: str, size: int) -> Image.Image:
        png = self._resvg.svg_to_bytes(
            svg_string=self.svg(seed, clothes, gesture), width=size, height=size, background="white"
        )
        with Image.open(io.BytesIO(bytes(png))) as image:
            return image.convert("RGB")


def render_demo_dataset(
    out_dir: str | Path,
    count: int,
    size: int = 64,
    seed: int = 0,
    gesture_probability: float = 100,
    progress=None,
) -> dict[str, Any]:
    """Render ``count`` labelled notionists avatars into ``out_dir``; returns the manifest.

    Attribute draws use NumPy's ``RandomState([seed, i])`` per image, so image i is the
    same whatever ``count`` is, and different seeds give disjoint-looking sets (use one
    seed for training and another for held-out renders). The outfit family is drawn
    uniformly (then a variant within it), the gesture uniformly, absent with probability
    1 - gesture_probability / 100.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if size < 8 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    if not 0 <= gesture_probability <= 100:
        raise ValueError("gesture probability must be within 0..100")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    renderer = NotionistsRenderer()
    class_names, class_attributes = demo_classes(gesture_probability)
    families = list(CLOTHES_FAMILIES)
    labels: dict[str, int] = {}
    attributes: dict[str, dict[str, Any]] = {}
    for i in range(count):
        rng = np.random.RandomState([seed, i])
        family = families[rng.randint(len(families))]
        clothes = CLOTHES_FAMILIES[family][rng.randint(len(CLOTHES_FAMILIES[family]))]
        gesture = GESTURES[rng.randint(len(GESTURES))]
        if rng.uniform(0, 100) >= gesture_probability:
            gesture = NO_GESTURE
        dicebear_seed = f"persona-studio-{seed}-{i}"
        name = f"images/{i:06d}.png"
        image = renderer.render(dicebear_seed, clothes, gesture, size)
        image.save(out / name, format="PNG", optimize=False, compress_level=6)
        labels[name] = class_names.index(f"{family}/{gesture}")
        attributes[name] = {"outfit": family, "clothes": clothes, "gesture": gesture, "dicebear_seed": dicebear_seed}
        if progress is not None:
            progress(i + 1, count)
    manifest = {
        "labels": labels,
        "class_names": class_names,
        "class_attributes": class_attributes,
        "attributes": attributes,
        "source": {
            "style": "notionists",
            "license": renderer.license,
            "packages": package_versions(),
            "seed": seed,
            "count": count,
            "size": size,
            "gesture_probability": gesture_probability,
            "clothes_families": {k: list(v) for k, v in CLOTHES_FAMILIES.items()},
            "flipped": False,
        },
    }
    (out / "dataset.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (out / "LICENSE.txt").write_text(DEMO_LICENSE)
    (out / "README.md").write_text(
        "# Notionists demo dataset\n\n"
        f"{count} avatars at {size}×{size}, rendered deterministically (seed {seed}, gestureProbability "
        f"{gesture_probability:g}) with {', '.join(f'{k} {v}' for k, v in package_versions().items())}.\n\n"
        "Regenerate with:\n\n"
        f"    python -m generation.stylegan.training dataset OUT_DIR --count {count} --size {size} --seed {seed} "
        f"--gesture-probability {gesture_probability:g}\n\n"
        "`dataset.json` maps each image to its class (outfit family × gesture; `class_names`) and keeps the raw "
        "DiceBear `clothes` variant and `gesture` per image under `attributes`. Images are never flipped.\n\n"
        "Licence: CC0 1.0 (see LICENSE.txt).\n"
    )
    return manifest
