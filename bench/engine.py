"""Generator inference benchmark: images/s and peak memory, fast path vs reference ops.

    python bench/engine.py                       # CPU, paper256, batch 1 and 8, 2 threads
    python bench/engine.py --device cuda --resolutions 256,1024 --batches 1,8,32

Each measurement runs in a fresh process (so peak memory is its own), and the
implementations alternate over ``--rounds`` rounds so that both see the same machine
load; the best round counts. Configurations: at 256² the "paper256" generator
(channel_base 16384, channel_max 512, 8 mapping layers); at 1024² config-f channels
(channel_base 32768). Random weights, noise mode const, float32 on CPU; on CUDA the
last four resolutions run in float16 with conv_clamp 256, as in training.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generator_config(resolution: int, device: str):
    from generation.stylegan import GeneratorConfig

    cuda = device == "cuda"
    return GeneratorConfig(
        img_resolution=resolution,
        channel_base=16384 if resolution <= 256 else 32768,
        channel_max=512,
        mapping_layers=8,
        num_fp16_res=4 if cuda else 0,
        conv_clamp=256 if cuda else None,
    )


def measure(args: argparse.Namespace) -> dict:
    """One (implementation, resolution, batch) measurement in this process."""
    import contextlib

    import torch

    from generation.stylegan import random_generator
    from generation.stylegan.ops import use_reference_ops

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = random_generator(generator_config(args.resolution, args.device), seed=0).to(device)
    z = torch.randn(args.batch, generator.config.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    context = use_reference_ops() if args.impl == "reference" else contextlib.nullcontext()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode(), context:
        for _ in range(args.warmup):
            generator(z)
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        images, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds or images == 0:
            generator(z)
            sync()
            images += args.batch
        elapsed = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {"images_per_s": images / elapsed, "peak_mib": peak}


def run_worker(impl: str, resolution: int, batch: int, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--worker", "--impl", impl, "--resolution", str(resolution), "--batch", str(batch),
        "--device", args.device, "--threads", str(args.threads), "--seconds", str(args.seconds),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--resolutions", default="256")
    parser.add_argument("--batches", default=None, help="default: 1,8 on CPU, 1,8,32 on CUDA")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="fast", help=argparse.SUPPRESS)
    parser.add_argument("--resolution", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args)))
        return 0

    fast = "cuda-ops" if args.device == "cuda" else "fast"
    batches = [int(b) for b in (args.batches or ("1,8,32" if args.device == "cuda" else "1,8")).split(",")]
    resolutions = [int(r) for r in args.resolutions.split(",")]
    best: dict[tuple, dict] = {}
    for _ in range(args.rounds):
        for resolution in resolutions:
            for batch in batches:
                for impl in (fast, "reference"):
                    result = run_worker(impl, resolution, batch, args)
                    key = (impl, resolution, batch)
                    if key not in best or result["images_per_s"] > best[key]["images_per_s"]:
                        best[key] = result

    print(f"device={args.device} threads={args.threads} torch-impls={fast},reference best of {args.rounds} rounds")
    print(f"{'impl':10} {'res':>5} {'batch':>5} {'images/s':>10} {'peak MiB':>9}")
    for (impl, resolution, batch), result in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        print(f"{impl:10} {resolution:5d} {batch:5d} {result['images_per_s']:10.2f} {result['peak_mib']:9.0f}")
    if args.device == "cpu" and {1, 8} <= set(batches):
        for resolution in resolutions:
            fast8 = best[("fast", resolution, 8)]["images_per_s"]
            ref8 = best[("reference", resolution, 8)]["images_per_s"]
            fast1 = best[("fast", resolution, 1)]["images_per_s"]
            print(f"{resolution}²: fast/reference at batch 8 = {fast8 / ref8:.2f}x (target >= 2); "
                  f"fast batch 8 / batch 1 per image = {fast8 / fast1:.2f}x (target >= 1)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
