"""CPU training throughput of the half-width 64×64 conditional StyleGAN2 (preset half64).

    python bench/train_cpu.py [--threads 2] [--steps 6] [--batch 32] [--precision bf16]
                              [--data DIR] [--no-tcmalloc]

Renders a small labelled notionists dataset (or uses --data), then for each variant
(plain malloc, and tcmalloc via LD_PRELOAD when Debian's libgoogle-perftools4 is
installed) runs the real training loop in a fresh process: a short warm-up run, then a
resumed run of --steps steps, and prints the images/s of the resumed run (generator step
+ discriminator step + lazy R1 + EMA, i.e. images of training progress per second).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
)


def child(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from generation.stylegan.training.loop import TrainOptions, train

    torch.set_num_threads(args.threads)
    rates: list[float] = []

    def log(line: str) -> None:
        if " img/s" in line:
            rates.append(float(line.split(" img/s")[0].split()[-1]))

    with tempfile.TemporaryDirectory() as run:
        common = dict(data=args.data, run_dir=run, preset=args.preset, batch=args.batch, precision=args.precision,
                      device="cpu", log_seconds=1e9, snapshot_kimg=1e9, threads=args.threads)  # fmt: skip
        train(TrainOptions(steps=2, **common), log=lambda line: None)  # warm-up (allocator, oneDNN kernels)
        train(TrainOptions(steps=2 + args.steps, **common), log=log)
    print(json.dumps({"images_per_second": rates[-1]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--preset", default="half64")
    parser.add_argument("--data")
    parser.add_argument("--no-tcmalloc", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            sys.path.insert(0, str(ROOT))
            from generation.stylegan.training.dataset import render_demo_dataset

            data = str(Path(tmp) / "data")
            render_demo_dataset(data, 512, size=64, seed=0)
        variants = [("malloc", None)]
        tcmalloc = next((p for p in TCMALLOC_CANDIDATES if Path(p).exists()), None)
        if not args.no_tcmalloc:
            if tcmalloc:
                variants.append(("tcmalloc", tcmalloc))
            else:
                print("tcmalloc: not installed (apt-get install libgoogle-perftools4)")
        print(f"{args.preset} conditional 64x64, batch {args.batch}, {args.precision}, {args.threads} torch threads, "
              f"{args.steps} timed steps")  # fmt: skip
        for name, preload in variants:
            env = dict(os.environ)
            if preload:
                env["LD_PRELOAD"] = (preload + " " + env.get("LD_PRELOAD", "")).strip()
            command = [sys.executable, __file__, "--child", "--data", data, "--threads", str(args.threads),
                       "--steps", str(args.steps), "--preset", args.preset, "--batch", str(args.batch),
                       "--precision", args.precision]  # fmt: skip
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                reason = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
                print(f"{name}: failed: {reason}")
                continue
            rate = json.loads(out.stdout.strip().splitlines()[-1])["images_per_second"]
            print(f"{name:9s} {rate:7.1f} images/s  ({rate * 3600 / 1000:.0f} kimg/hour)")


if __name__ == "__main__":
    main()
