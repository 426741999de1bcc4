"""Time to make every file a campaign item ships, from one square master (content/formats.py).

    python bench/formats.py              # best of 3 rounds
    python bench/formats.py --rounds 5

For a 64 px master (a render of the bundled line-art model, cut from its samples.png) and a
1024 px one (synthetic "photographic" content: smooth colour gradients plus noise, which is
what makes PNG and JPEG encoding expensive), and for each format (1:1, 4:5, 9:16) it runs
the whole chain: format_render -> disclosure_embed -> draft_mark -> derivatives (web JPEG +
thumbnail WebP, the disclosure carried along). It prints the best round's seconds per step,
summed over the three formats, and the total per master. One process, one CPU thread
(Pillow's encoders and resamplers here are single-threaded).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from content.formats import FORMATS, derivatives, disclosure_embed, draft_mark, format_render  # noqa: E402

STEPS = ("format_render", "disclosure_embed", "draft_mark", "derivatives")


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def line_art_master() -> bytes:
    """The first sample of the bundled model: samples.png holds 8 x 8 renders at 2x (nearest)."""
    with Image.open(ROOT / "generation/default_model/samples.png") as grid:
        cell = grid.width // 8
        return png(grid.convert("RGB").crop((0, 0, cell, cell)).resize((64, 64), Image.Resampling.NEAREST))


def photographic_master(size: int = 1024) -> bytes:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([120 + 90 * np.sin(3 * x + 1), 100 + 80 * np.cos(4 * y), 140 + 60 * np.sin(5 * (x + y))], -1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    return png(Image.fromarray(pixels, "RGB"))


def one_round(master: bytes) -> tuple[dict[str, float], dict[str, int]]:
    seconds = dict.fromkeys(STEPS, 0.0)
    sizes: dict[str, int] = {}
    for fmt in FORMATS:
        start = time.perf_counter()
        rendered = format_render(master, fmt)
        seconds["format_render"] += time.perf_counter() - start

        start = time.perf_counter()
        disclosed = disclosure_embed(rendered, fmt=fmt, generator="bench", persona="bench", brand="bench")
        seconds["disclosure_embed"] += time.perf_counter() - start

        start = time.perf_counter()
        marked = draft_mark(disclosed)
        seconds["draft_mark"] += time.perf_counter() - start

        start = time.perf_counter()
        made = derivatives(marked)
        seconds["derivatives"] += time.perf_counter() - start
        sizes[fmt] = len(marked) + len(made["web"]) + len(made["thumbnail"])
    return seconds, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    for name, master in (("64 px line-art", line_art_master()), ("1024 px photographic", photographic_master())):
        rounds = [one_round(master) for _ in range(args.rounds)]
        seconds, sizes = min(rounds, key=lambda result: sum(result[0].values()))
        steps = "  ".join(f"{step} {value:.3f}" for step, value in seconds.items())
        files = ", ".join(f"{fmt} {size / 1e6:.2f} MB" for fmt, size in sizes.items())
        print(f"{name}: all derivatives of 3 formats in {sum(seconds.values()):.3f} s  ({steps})")
        print(f"    bytes per format (PNG + web + thumbnail): {files}")


if __name__ == "__main__":
    main()
