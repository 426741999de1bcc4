"""The operators' command line: ``python -m generation.stylegan {import,render,build-ops}``.

    import SRC.pkl DEST_DIR      convert a StyleGAN2-ADA/StyleGAN3 .pkl into our format
    render DEST_DIR --seeds 0-7 --psi 0.7 [--class N] [--truncation-centre global|class]
           [--noise-mode const|random|none] [--mix-seed S --mix-layers 0-3] --out OUT.npz
           [--png DIR] [--device cpu]
    build-ops                    compile the CUDA ops ahead of time (worker images)

``render`` writes float32 arrays ``ws`` [n, num_ws, w_dim] and ``img`` [n, C, H, W],
one row per seed, each computed at batch size 1. ``--truncation-centre`` overrides the
model's own (``global``: w_avg, as NVIDIA's code; ``class``: the class's centre in W).
Errors exit non-zero with one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_generator, save_generator
from .config import TRUNCATION_CENTRES
from .latents import class_label, images_to_uint8, parse_range, seed_to_z, style_mix


class CommandError(Exception):
    """A failure to report as one line and exit status 1."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the whole usage first
        self.exit(2, f"{self.prog}: error: {message}\n")


def seed_list(text: str) -> list[int]:
    try:
        return parse_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m generation.stylegan", description="Persona Studio StyleGAN2 engine")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    importer = commands.add_parser("import", help="convert a StyleGAN2-ADA .pkl into safetensors + JSON")
    importer.add_argument("source", type=Path, help="the .pkl file")
    importer.add_argument("destination", type=Path, help="directory to write config.json and weights.safetensors")
    importer.add_argument("--network", default="G_ema", help="which network of the file (default: G_ema)")

    render = commands.add_parser("render", help="render seeds with an imported generator")
    render.add_argument("model", type=Path, help="directory written by 'import'")
    render.add_argument("--seeds", type=seed_list, required=True, help="e.g. 0-7 or 1,5,9")
    render.add_argument("--psi", type=float, default=1.0, help="truncation psi (default 1.0)")
    render.add_argument("--class", dest="class_index", type=int, help="class label of a conditional model")
    render.add_argument(
        "--truncation-centre",
        choices=TRUNCATION_CENTRES,
        help="where --psi pulls w: global (w_avg, as NVIDIA's code) or class (the class's centre); "
        "default: the model's own",
    )
    render.add_argument("--noise-mode", choices=["const", "random", "none"], default="const")
    render.add_argument("--mix-seed", type=int, help="seed whose W+ rows replace --mix-layers")
    render.add_argument("--mix-layers", type=seed_list, help="W+ rows to take from --mix-seed, e.g. 0-3")
    render.add_argument("--out", type=Path, required=True, help="output .npz with arrays ws and img")
    render.add_argument("--png", type=Path, help="also write seedNNNN.png images to this directory")
    render.add_argument("--device", default="cpu", help="torch device (default cpu)")

    commands.add_parser("build-ops", help="compile our CUDA ops into the build cache")
    return parser


def run_import(args: argparse.Namespace) -> None:
    from .pickle_import import import_stylegan2_pickle

    generator = import_stylegan2_pickle(args.source, network=args.network)
    sha256 = save_generator(generator, args.destination)
    config = generator.config
    print(
        f"imported {args.network} ({config.img_resolution}x{config.img_resolution}, "
        f"{config.num_ws} ws, c_dim {config.c_dim}, truncation centre {config.truncation_centre}) "
        f"to {args.destination} sha256={sha256}"
    )


def run_render(args: argparse.Namespace) -> None:
    if (args.mix_seed is None) != (args.mix_layers is None):
        raise CommandError("--mix-seed and --mix-layers go together")
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        raise CommandError(f"bad --device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda asked for, but CUDA is not available here")
    generator = load_generator(args.model, device=device)
    config = generator.config
    c = class_label(config, args.class_index)
    c = None if c is None else c[None].to(device)
    centre = args.truncation_centre or generator.truncation_centre

    def wplus(seed: int) -> torch.Tensor:
        z = seed_to_z(seed, config.z_dim)[None].to(device)
        return generator.mapping(z, c, truncation_psi=args.psi, truncation_centre=centre)

    all_ws, all_img = [], []
    with torch.no_grad():
        for seed in args.seeds:
            ws = wplus(seed)
            if args.mix_seed is not None:
                ws = style_mix(ws, wplus(args.mix_seed), args.mix_layers)
            torch.manual_seed(seed)  # makes noise_mode="random" repeatable per seed
            all_ws.append(ws.cpu())
            all_img.append(generator.synthesis(ws, noise_mode=args.noise_mode).cpu())
    ws = torch.cat(all_ws)
    img = torch.cat(all_img)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, ws=ws.numpy().astype(np.float32), img=img.numpy().astype(np.float32))
    if args.png is not None:
        from PIL import Image

        args.png.mkdir(parents=True, exist_ok=True)
        for seed, pixels in zip(args.seeds, images_to_uint8(img), strict=True):
            image = Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels)
            image.save(args.png / f"seed{seed:04d}.png")
    print(f"rendered {len(args.seeds)} seeds to {args.out} (psi {args.psi}, truncation centre {centre})")


def run_build_ops(args: argparse.Namespace) -> None:
    from .ops.cuda import build_all

    print(f"CUDA ops built in {build_all()}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"import": run_import, "render": run_render, "build-ops": run_build_ops}
    try:
        handlers[args.command](args)
    except (CommandError, CheckpointError, ValueError, OSError, RuntimeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0
