"""``python -m generation.stylegan.training {dataset,train,metrics}``.

    dataset OUT_DIR --count N [--size 64] [--seed 0] [--gesture-probability 100]
        render the DiceBear notionists demo dataset (deterministic, CC0 art)
    train DATA RUN_DIR [--preset half64] [--kimg 100 | --steps N] [--batch 32]
          [--augment color,translation,cutout] [--max-minutes M] [--device auto]
          [--init-from GENERATOR_DIR] ...
        train or resume (RUN_DIR/checkpoint) and export G_ema to RUN_DIR/export
    metrics GENERATOR_DIR --data TRAIN_DIR --heldout HELDOUT_DIR [--classifier DIR]
        conditioning accuracy, Fréchet distance and diversity, as JSON
    card GENERATOR_DIR --name NAME --licence TEXT
        render the sample grids and write MODEL_CARD.md (from training.json, metrics.json)
    identity OUT_DIR [--people 4000] [--views 4] [--heldout-people 500] [--steps 600]
        train the demo domain's identity embedding on same-person DiceBear renders and
        write it with its held-out calibration (OUT_DIR/identity.json)

Errors exit non-zero with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ..cli import OneLineParser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m generation.stylegan.training", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    ds = sub.add_parser("dataset", help="render the DiceBear notionists demo dataset")
    ds.add_argument("out_dir")
    ds.add_argument("--count", type=_positive_int, required=True)
    ds.add_argument("--size", type=_positive_int, default=64)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--gesture-probability", type=float, default=100.0)

    tr = sub.add_parser("train", help="train or resume a generator")
    tr.add_argument("data", help="image folder, labelled when it holds dataset.json")
    tr.add_argument("run_dir")
    tr.add_argument("--preset", default="half64", choices=["half64", "quarter64", "full64", "tiny"])
    tr.add_argument("--resolution", type=_positive_int)
    tr.add_argument("--unconditional", action="store_true", help="ignore the labels")
    for name in ("channel-base", "channel-max", "z-dim", "w-dim", "mapping-layers"):
        tr.add_argument(f"--{name}", type=_positive_int)
    tr.add_argument("--batch", type=_positive_int, default=32)
    tr.add_argument("--kimg", type=_positive_float, default=100.0)
    tr.add_argument("--steps", type=_positive_int, help="train for this many steps instead of --kimg")
    tr.add_argument("--max-minutes", type=_positive_float, help="stop, checkpoint and export after this long")
    tr.add_argument("--glr", type=_positive_float, default=0.0025)
    tr.add_argument("--dlr", type=_positive_float, default=0.0025)
    tr.add_argument("--r1-gamma", type=float, help="default 0.0002 * resolution^2 / batch")
    tr.add_argument("--r1-interval", type=_positive_int, default=16)
    tr.add_argument("--style-mixing", type=float, default=0.9)
    tr.add_argument("--augment", default="", help="DiffAugment policy, e.g. color,translation,cutout")
    tr.add_argument(
        "--class-loss",
        dest="class_weight",
        type=float,
        default=0.0,
        help="weight of the auxiliary-classifier (AC-GAN) loss; 0 turns it off",
    )
    tr.add_argument(
        "--mode-seeking", type=float, default=0.0, help="weight of the mode-seeking diversity term; 0 turns it off"
    )
    tr.add_argument("--identity", help="a frozen identity embedding folder for the identity terms")
    tr.add_argument("--teacher", help="a frozen attribute classifier folder (classifier.json) for the identity term")
    tr.add_argument(
        "--identity-weight",
        type=float,
        default=0.0,
        help="weight of the identity-consistency term (a relabelled latent keeps its person); 0: off",
    )
    tr.add_argument(
        "--identity-diversity",
        type=float,
        default=0.0,
        help="weight of the term that keeps different latents different people; 0: off",
    )
    tr.add_argument("--identity-batch", type=_positive_int, default=8, help="latents per step the identity terms use")
    tr.add_argument(
        "--mapping-only", action="store_true",
        help="fine-tune only the mapping network; the synthesis network stays as trained",
    )  # fmt: skip
    tr.add_argument("--ema-kimg", type=_positive_float)
    tr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    tr.add_argument("--device", default="auto")
    tr.add_argument("--reference-ops", action="store_true", help="use the readable ops on CUDA too")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--snapshot-kimg", type=_positive_float, default=10.0)
    tr.add_argument("--log-seconds", type=_positive_float, default=10.0)
    tr.add_argument("--threads", type=_positive_int)
    tr.add_argument("--export", dest="export_dir")
    tr.add_argument(
        "--init-from", help="fine-tune this generator directory (its architecture and weights) with a new discriminator"
    )
    tr.add_argument(
        "--d-warmup-kimg",
        type=float,
        help="hold the generator still while the new discriminator learns (default 5 with --init-from, else 0)",
    )

    me = sub.add_parser("metrics", help="measure a trained generator")
    me.add_argument("generator", help="a generator directory (config.json + weights.safetensors)")
    me.add_argument("--data", required=True, help="the training dataset (for the classifier)")
    me.add_argument("--heldout", required=True, help="held-out renders, e.g. the demo dataset with another --seed")
    me.add_argument("--classifier", help="directory to load the classifier from, or to save it to")
    me.add_argument("--epochs", type=_positive_int, default=6)
    me.add_argument("--per-class", type=_positive_int, default=10)
    me.add_argument("--psi", type=float, default=1.0)
    me.add_argument("--threads", type=_positive_int)
    me.add_argument("--device", default="cpu")
    me.add_argument("--out", help="write the metrics JSON here too")

    ident = sub.add_parser("identity", help="train the demo domain's identity embedding")
    ident.add_argument("out_dir", help="e.g. a generator directory's identity/ folder")
    ident.add_argument("--people", type=_positive_int, default=4000)
    ident.add_argument("--views", type=_positive_int, default=4)
    ident.add_argument("--heldout-people", type=_positive_int, default=500)
    ident.add_argument("--steps", type=_positive_int, default=600)
    ident.add_argument("--seed", type=int, default=0)
    ident.add_argument("--threads", type=_positive_int)

    card = sub.add_parser("card", help="render the sample grids and write MODEL_CARD.md")
    card.add_argument("generator", help="an exported generator directory (with training.json)")
    card.add_argument("--name", required=True)
    card.add_argument("--licence", required=True, help="what the trained weights may be used for")
    return parser


def run_dataset(args: argparse.Namespace) -> None:
    from .dataset import render_demo_dataset

    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % 1000 == 0:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"rendered {done}/{total} ({rate:.0f} images/s)", flush=True)

    render_demo_dataset(args.out_dir, args.count, size=args.size, seed=args.seed,
                        gesture_probability=args.gesture_probability, progress=progress)  # fmt: skip
    print(f"wrote {args.count} images and dataset.json to {args.out_dir}")


def train_options(args: argparse.Namespace):
    """The ``train`` subcommand's arguments as TrainOptions."""
    from .loop import TrainOptions

    return TrainOptions(
        data=args.data,
        run_dir=args.run_dir,
        preset=args.preset,
        resolution=args.resolution,
        conditional=not args.unconditional,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        mapping_layers=args.mapping_layers,
        batch=args.batch,
        kimg=args.kimg,
        steps=args.steps,
        max_minutes=args.max_minutes,
        glr=args.glr,
        dlr=args.dlr,
        r1_gamma=args.r1_gamma,
        r1_interval=args.r1_interval,
        style_mixing=args.style_mixing,
        augment=args.augment,
        class_weight=args.class_weight,
        mode_seeking=args.mode_seeking,
        identity=args.identity,
        teacher=args.teacher,
        identity_weight=args.identity_weight,
        identity_diversity=args.identity_diversity,
        identity_batch=args.identity_batch,
        mapping_only=args.mapping_only,
        ema_kimg=args.ema_kimg,
        precision=args.precision,
        device=args.device,
        reference_ops=args.reference_ops,
        seed=args.seed,
        snapshot_kimg=args.snapshot_kimg,
        log_seconds=args.log_seconds,
        threads=args.threads,
        export_dir=args.export_dir,
        init_from=args.init_from,
        d_warmup_kimg=args.d_warmup_kimg,
    )


def run_train(args: argparse.Namespace) -> None:
    from .loop import train

    train(train_options(args))


def run_metrics(args: argparse.Namespace) -> None:
    from ..checkpoint import load_generator
    from .dataset import load_dataset
    from .metrics import MetricOptions, evaluate, load_classifier, save_classifier, train_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    G = load_generator(args.generator, device=args.device)
    resolution = G.config.img_resolution
    classifier_dir = Path(args.classifier) if args.classifier else None
    if classifier_dir is not None and (classifier_dir / "classifier.json").is_file():
        classifier, _ = load_classifier(classifier_dir, channels=G.config.img_channels)
    else:
        data = load_dataset(args.data, resolution=resolution)
        classifier = train_classifier(
            data, epochs=args.epochs, log=lambda line: print(line, file=sys.stderr, flush=True)
        )
        if classifier_dir is not None:
            save_classifier(classifier, classifier_dir, {"data": str(Path(args.data).resolve()), "epochs": args.epochs})
    heldout = load_dataset(args.heldout, resolution=resolution)
    results = evaluate(G, classifier, heldout, MetricOptions(per_class=args.per_class, psi=args.psi))
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


def run_identity(args: argparse.Namespace) -> None:
    from .identity_embedding import check_views, identity_measure_train

    check_views(args.views)
    if args.threads:
        torch.set_num_threads(args.threads)
    measure, report = identity_measure_train(
        people=args.people, views=args.views, heldout_people=args.heldout_people, steps=args.steps, seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    measure.save(args.out_dir)
    print(json.dumps(report.summary(), indent=1))


def run_card(args: argparse.Namespace) -> None:
    from .model_card import write_model_card

    print(f"wrote {write_model_card(args.generator, name=args.name, licence_note=args.licence)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {
            "dataset": run_dataset,
            "train": run_train,
            "metrics": run_metrics,
            "card": run_card,
            "identity": run_identity,
        }[args.command](args)
    except (ValueError, RuntimeError, OSError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
