"""The training loop (Karras et al. 2020 appendix B; Karras et al. 2020b, StyleGAN2-ADA's
training configuration), written from the papers.

- Adam with beta1 = 0, beta2 = 0.99, eps = 1e-8 for both networks; the discriminator's
  learning rate and betas are adjusted for lazy R1 regularisation
  (lr * c, beta ** c with c = interval / (interval + 1)).
- Each step: one generator update (non-saturating loss, style mixing; optionally the
  auxiliary-classifier and mode-seeking terms of ``losses.py``), one discriminator update
  (logistic loss, plus R1 every ``r1_interval`` steps), then the EMA generator
  G_ema <- lerp(G, G_ema, beta) with beta = 0.5 ** (batch / ema_nimg), ema_nimg ramped up
  as ``ema_rampup`` × images seen (a fine-tuned parent's included) so early snapshots are
  not stuck at a random initialisation.
- Mixed precision: bfloat16 autocast on CPUs with native bf16 instructions (AVX-512 BF16
  or AMX; fp32 on others, AVX-512 ones included, which emulate bf16); on CUDA the
  engine's own float16 blocks for the highest resolutions (with activation clamping), as
  StyleGAN2-ADA does, or bf16.
  On CPU the generator runs on the engine's readable reference ops, which autograd
  differentiates (the fast CPU path is inference-only); on CUDA on our autograd-aware
  CUDA kernels.
- Fine-tuning (``init_from``): a fresh run may start from a trained generator (its
  architecture and weights; G and G_ema both) with a new discriminator. The generator is
  held still for the first ``d_warmup_kimg`` while that discriminator learns, so its first
  updates follow a critic that has seen the data, not random gradients. The parent's
  sha256 and images seen are carried into the checkpoint and the export.
- Checkpoints (``RUN/checkpoint/``, replaced atomically): ``G/`` and ``G_ema/`` in our
  generator format (``save_generator``), ``D.safetensors``, ``optim.safetensors`` (both
  Adam states and every RNG state, as plain tensors) and ``state.json`` (counters,
  options, configs). No pickle anywhere: resuming cannot execute code. A resumed run
  continues exactly where it stopped (same counters, same random stream).
- One progress line per ``log_seconds``: kimg, images/s, ETA and the losses. Sample grids
  (fixed seeds × classes, G_ema, noise const) go to ``RUN/samples/`` as PNG, and the final
  G_ema is exported with ``save_generator`` to ``RUN/export/`` with ``training.json``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from .. import ops
from ..checkpoint import TRAINING_FILE, WEIGHTS_FILE, file_sha256, load_generator, save_generator
from ..config import GeneratorConfig
from ..generator import Generator
from ..identity import load_learned_identity
from ..latents import images_to_uint8, seed_to_z
from .augment import parse_policy
from .classifier import class_targets, load_classifier
from .dataset import ImageDataset, load_dataset
from .discriminator import Discriminator, DiscriminatorConfig
from .losses import GanLoss, LossConfig

STATE_VERSION = 1

# Architecture presets: {name: (generator overrides, discriminator overrides)}.
PRESETS: dict[str, dict[str, Any]] = {
    # StyleGAN2-ADA's "auto" configuration at 64×64 halved in width: 256 channels at
    # most, 128 at 64×64, z/w 256, two mapping layers. Our CPU default.
    "half64": dict(channel_base=8192, channel_max=256, z_dim=256, w_dim=256, mapping_layers=2),
    # A quarter of the width (64 channels at 64×64): about 4× cheaper per image, for
    # CPU-only runs that must see many images.
    "quarter64": dict(channel_base=4096, channel_max=128, z_dim=128, w_dim=128, mapping_layers=2),
    "full64": dict(channel_base=16384, channel_max=512, z_dim=512, w_dim=512, mapping_layers=2),
    # For tests: a few thousand parameters.
    "tiny": dict(channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2),
}


@dataclass
class TrainOptions:
    data: str
    run_dir: str
    preset: str = "half64"
    resolution: int | None = None
    conditional: bool = True
    channel_base: int | None = None
    channel_max: int | None = None
    z_dim: int | None = None
    w_dim: int | None = None
    mapping_layers: int | None = None
    batch: int = 32
    kimg: float = 100.0
    steps: int | None = None  # overrides kimg: batch × steps images
    max_minutes: float | None = None  # stop (checkpoint + export) after this long
    glr: float = 0.0025
    dlr: float = 0.0025
    r1_gamma: float | None = None  # default: 0.0002 * R^2 / batch (StyleGAN2-ADA's heuristic)
    r1_interval: int = 16
    style_mixing: float = 0.9
    augment: str = ""
    class_weight: float = 0.0  # AC-GAN auxiliary classification; labelled data only
    mode_seeking: float = 0.0
    identity: str | None = None  # an identity embedding folder (identity.json + weights)
    teacher: str | None = None  # an attribute classifier folder (training.metrics) for the identity term
    identity_weight: float = 0.0
    identity_diversity: float = 0.0
    identity_batch: int = 8
    mapping_only: bool = False  # fine-tune the mapping network only (synthesis frozen)
    ema_kimg: float | None = None  # default: batch × 10 / 32
    ema_rampup: float | None = 0.05
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"
    reference_ops: bool = False  # force the readable ops on CUDA too
    seed: int = 0
    snapshot_kimg: float = 10.0
    log_seconds: float = 10.0
    grid_seeds: int = 8
    threads: int | None = None
    export_dir: str | None = None
    init_from: str | None = None  # a generator directory to fine-tune (fresh runs only)
    d_warmup_kimg: float | None = None  # G held still this long; default 5 with init_from, else 0

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError("precision must be auto, fp32, bf16 or fp16")
        if self.r1_interval < 1:
            raise ValueError("r1-interval must be at least 1")
        if not 0 <= self.style_mixing <= 1:
            raise ValueError("style-mixing probability must be within 0..1")
        if self.class_weight < 0 or self.mode_seeking < 0:
            raise ValueError("class-loss and mode-seeking weights must not be negative")
        if self.class_weight > 0 and not self.conditional:
            raise ValueError("class-loss needs class labels; it cannot be used with --unconditional")
        if self.identity_weight < 0 or self.identity_diversity < 0:
            raise ValueError("identity weights must not be negative")
        if (self.identity_weight > 0 or self.identity_diversity > 0) and not (
            self.identity and self.teacher and self.conditional
        ):
            raise ValueError(
                "the identity term needs --identity (an embedding folder), --teacher (a classifier folder) and labels"
            )
        if self.d_warmup_kimg is not None and self.d_warmup_kimg < 0:
            raise ValueError("d-warmup-kimg must not be negative")
        if self.steps is None and self.kimg <= 0:
            raise ValueError("kimg must be positive")
        parse_policy(self.augment)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but is not available")
    return device


def cpu_precision(*, avx512_bf16: bool, amx: bool) -> str:
    """bf16 only where the CPU computes it natively (AVX-512 BF16 or AMX tiles), else fp32:
    elsewhere oneDNN emulates bf16 — training measured 25× slower than fp32 on an AVX2 CPU
    (0.3 vs 7.7 img/s), and inference 3.8× slower on an AVX-512 Xeon without AVX-512 BF16."""
    return "bf16" if avx512_bf16 or amx else "fp32"


def _precision(options: TrainOptions, device: torch.device) -> str:
    if options.precision != "auto":
        if options.precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 training needs CUDA; use bf16 or fp32 on CPU")
        return options.precision
    if device.type == "cpu":
        return cpu_precision(avx512_bf16=torch.cpu._is_avx512_bf16_supported(), amx=torch.cpu._is_amx_tile_supported())
    return "fp16" if torch.cuda.get_device_capability(device)[0] >= 7 else "fp32"


ARCHITECTURE_FIELDS = ("channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers")


def build_configs(
    options: TrainOptions, dataset: ImageDataset, precision: str, parent: GeneratorConfig | None = None
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The networks' configs: the preset's architecture (with the options' overrides), or
    ``parent``'s when fine-tuning, which must then fit the dataset."""
    c_dim = dataset.c_dim if options.conditional else 0
    if parent is not None:
        preset = {name: getattr(parent, name) for name in ARCHITECTURE_FIELDS}
        if (parent.img_resolution, parent.img_channels, parent.c_dim) != (dataset.resolution, dataset.channels, c_dim):
            raise ValueError(
                f"{options.init_from} makes {parent.img_resolution}×{parent.img_resolution}×{parent.img_channels} "
                f"images of {parent.c_dim} classes; this dataset has {dataset.resolution}×{dataset.resolution}"
                f"×{dataset.channels} images of {c_dim} classes"
            )
    else:
        preset = dict(PRESETS[options.preset])
        for name in ARCHITECTURE_FIELDS:
            if getattr(options, name) is not None:
                preset[name] = getattr(options, name)
    fp16_res = min(4, int(math.log2(dataset.resolution)) - 1) if precision == "fp16" else 0
    clamp = 256.0 if precision == "fp16" else None
    g = GeneratorConfig(
        z_dim=preset["z_dim"],
        w_dim=preset["w_dim"],
        c_dim=c_dim,
        img_resolution=dataset.resolution,
        img_channels=dataset.channels,
        mapping_layers=preset["mapping_layers"],
        channel_base=preset["channel_base"],
        channel_max=preset["channel_max"],
        num_fp16_res=fp16_res,
        conv_clamp=clamp,
        truncation_centre="class",  # models trained here truncate towards their class's centre
        **(
            dict(
                mapping_lr_multiplier=parent.mapping_lr_multiplier,
                embed_features=parent.embed_features,
                resample_filter=parent.resample_filter,
            )
            if parent is not None
            else {}
        ),
    )
    d = DiscriminatorConfig(
        c_dim=c_dim,
        img_resolution=dataset.resolution,
        img_channels=dataset.channels,
        channel_base=preset["channel_base"],
        channel_max=preset["channel_max"],
        num_fp16_res=fp16_res,
        conv_clamp=clamp,
        aux_classifier=options.class_weight > 0,
    )
    return g, d


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


def _flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam's state_dict as plain tensors (safetensors) + its param groups (JSON)."""
    state = optimizer.state_dict()
    tensors = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class Counters:
    step: int = 0
    cur_nimg: int = 0
    train_seconds: float = 0.0


def save_checkpoint(
    run_dir: Path,
    G: Generator,
    G_ema: Generator,
    D: Discriminator,
    G_opt: torch.optim.Optimizer,
    D_opt: torch.optim.Optimizer,
    counters: Counters,
    sampler: torch.Generator,
    device: torch.device,
    extra: dict[str, Any],
) -> Path:
    final = run_dir / "checkpoint"
    tmp = run_dir / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_generator(G, tmp / "G")
    save_generator(G_ema, tmp / "G_ema")
    save_file({k: v.detach().cpu().contiguous() for k, v in D.state_dict().items()}, str(tmp / "D.safetensors"))
    g_tensors, g_meta = _flatten_optimizer("G_opt", G_opt)
    d_tensors, d_meta = _flatten_optimizer("D_opt", D_opt)
    rng = {"rng.cpu": torch.get_rng_state(), "rng.sampler": sampler.get_state()}
    if device.type == "cuda":
        rng["rng.cuda"] = torch.cuda.get_rng_state(device)
    save_file({**g_tensors, **d_tensors, **rng}, str(tmp / "optim.safetensors"))
    state = {
        "version": STATE_VERSION,
        "counters": dataclasses.asdict(counters),
        "G_opt": g_meta,
        "D_opt": d_meta,
        "D_config": D.config.to_dict(),
        **extra,
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    old = run_dir / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "checkpoint" / "state.json"
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is a checkpoint of another format version")
    return state


# --------------------------------------------------------------------------------------
# Samples and export
# --------------------------------------------------------------------------------------


def grid_classes(c_dim: int, rows: int) -> list[int | None]:
    """Up to ``rows`` class indices spread evenly over 0..c_dim-1 ([None] * rows if unconditional)."""
    if c_dim == 0:
        return [None] * rows
    return sorted({int(round(i * (c_dim - 1) / max(rows - 1, 1))) for i in range(rows)})


@torch.no_grad()
def sample_grid(
    G: Generator, classes: list[int | None], seeds: list[int], device: torch.device, psi: float = 1.0
) -> np.ndarray:
    """[rows × R, cols × R, C] uint8: one row per class, one column per seed."""
    config = G.config
    z = torch.stack([seed_to_z(s, config.z_dim) for s in seeds]).to(device)
    rows = []
    for cls in classes:
        c = None
        if config.c_dim:
            c = torch.zeros(len(seeds), config.c_dim, device=device)
            c[:, cls] = 1
        rows.append(images_to_uint8(G(z, c, truncation_psi=psi, noise_mode="const")))
    grid = np.stack(rows)  # [rows, cols, R, R, C]
    r, cols, h, w, ch = grid.shape
    return grid.transpose(0, 2, 1, 3, 4).reshape(r * h, cols * w, ch)


def save_png(array: np.ndarray, path: Path, scale: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"


def export_generator(G_ema: Generator, directory: Path, info: dict[str, Any]) -> str:
    sha = save_generator(G_ema, directory)
    (directory / TRAINING_FILE).write_text(json.dumps({**info, "weights_sha256": sha}, indent=1) + "\n")
    return sha


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def train(options: TrainOptions, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train (or resume) in ``options.run_dir``; returns a summary dict."""
    options.validate()
    log = log or (lambda line: print(line, flush=True))
    if options.threads:
        torch.set_num_threads(options.threads)
    device = _device(options.device)
    run_dir = Path(options.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = read_state(run_dir)

    dataset = load_dataset(options.data, resolution=options.resolution, labelled=options.conditional)
    if options.class_weight > 0 and dataset.c_dim == 0:
        raise ValueError(f"class-loss needs a labelled dataset; {options.data} has no class labels")
    precision = _precision(options, device)
    if state is not None:
        G = load_generator(run_dir / "checkpoint" / "G", device=device).train().requires_grad_(True)
        G_ema = load_generator(run_dir / "checkpoint" / "G_ema", device=device).eval()
        for network in (G, G_ema):  # a run begun before configs recorded it: trained here all the same
            network.set_truncation_centre("class")
        d_config = DiscriminatorConfig.from_dict(state["D_config"])
        c_dim = dataset.c_dim if options.conditional else 0
        if G.config.img_resolution != dataset.resolution or G.config.c_dim != c_dim:
            raise ValueError(
                "the checkpoint in the run folder does not fit this dataset (resolution or classes differ)"
            )
        D = Discriminator(d_config).to(device)
        D.load_state_dict(load_file(str(run_dir / "checkpoint" / "D.safetensors"), device=str(device)))
        if options.class_weight > 0 and not d_config.aux_classifier:
            raise ValueError("the checkpoint's discriminator has no class head; resume without --class-loss")
        log(f"resuming from {run_dir / 'checkpoint'} at step {state['counters']['step']}")
        parent_info = state.get("initialized_from")
    else:
        parent = load_generator(options.init_from, device=device) if options.init_from else None
        g_config, d_config = build_configs(options, dataset, precision, parent.config if parent else None)
        torch.manual_seed(options.seed)
        G = Generator(g_config).to(device).train()
        D = Discriminator(d_config).to(device)
        parent_info = None
        if parent is not None:
            G.load_state_dict(parent.state_dict())
            parent_info = _parent_info(Path(options.init_from))
            parent_sha = parent_info["weights_sha256"][:12]
            log(f"fine-tuning {options.init_from} (sha256 {parent_sha}) with a new discriminator")
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D.train()

    res = dataset.resolution
    r1_gamma = options.r1_gamma if options.r1_gamma is not None else 0.0002 * res * res / options.batch
    loss_config = LossConfig(
        r1_gamma=r1_gamma,
        r1_interval=options.r1_interval,
        style_mixing_prob=options.style_mixing,
        augment=parse_policy(options.augment),
        class_weight=options.class_weight,
        mode_seeking_weight=options.mode_seeking,
        identity_weight=options.identity_weight,
        identity_diversity_weight=options.identity_diversity,
        identity_batch=options.identity_batch,
    )
    identity = teacher = teacher_targets = None
    if options.teacher:
        teacher, meta = load_classifier(Path(options.teacher), channels=dataset.channels)
        teacher = teacher.to(device).requires_grad_(False)
        teacher_targets = class_targets(dataset.class_names, dataset.class_attributes, meta["vocab"])
    if options.identity:
        measure = load_learned_identity(options.identity)
        identity = measure.network.to(device).requires_grad_(False)
        # Different latents are pushed apart only where they look more alike than
        # all but 5% of real different people do.
        heldout = measure.info.get("heldout", {}).get("different_person", {})
        loss_config.identity_margin = heldout.get("p95", measure.calibration.different_person_median)
    if precision == "bf16":
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    loss = GanLoss(
        G, D, loss_config, autocast=autocast, identity=identity, teacher=teacher, teacher_targets=teacher_targets
    )

    betas = (0.0, 0.99)
    c_lazy = options.r1_interval / (options.r1_interval + 1)
    # Fine-tuning the mapping alone leaves the synthesis network, and so what the images
    # look like, exactly as trained; only where each (z, c) lands in W moves.
    g_params = G.mapping.parameters() if options.mapping_only else G.parameters()
    G_opt = torch.optim.Adam(g_params, lr=options.glr, betas=betas, eps=1e-8)
    D_opt = torch.optim.Adam(
        D.parameters(), lr=options.dlr * c_lazy, betas=(betas[0] ** c_lazy, betas[1] ** c_lazy), eps=1e-8
    )
    sampler = torch.Generator()
    counters = Counters()
    if state is not None:
        tensors = load_file(str(run_dir / "checkpoint" / "optim.safetensors"))
        G_opt.load_state_dict(_unflatten_optimizer("G_opt", tensors, state["G_opt"]))
        D_opt.load_state_dict(_unflatten_optimizer("D_opt", tensors, state["D_opt"]))
        torch.set_rng_state(tensors["rng.cpu"])
        sampler.set_state(tensors["rng.sampler"])
        if device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        counters = Counters(**state["counters"])
    else:
        sampler.manual_seed(options.seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(options.seed)

    total_nimg = options.steps * options.batch if options.steps is not None else int(options.kimg * 1000)
    d_warmup_kimg = options.d_warmup_kimg if options.d_warmup_kimg is not None else (5.0 if parent_info else 0.0)
    d_warmup_nimg = round(d_warmup_kimg * 1000)
    parent_nimg = parent_info["images_seen_total"] if parent_info else 0  # a trained start needs no EMA ramp-up
    ema_nimg_base = (options.ema_kimg if options.ema_kimg is not None else options.batch * 10 / 32) * 1000
    classes = grid_classes(G.config.c_dim, 8)
    grid_seeds = list(range(options.grid_seeds))
    samples_dir = run_dir / "samples"
    if not (samples_dir / "reals.png").exists():
        idx = torch.arange(min(len(dataset), len(classes) * len(grid_seeds)))
        reals = dataset.images[idx].permute(0, 2, 3, 1).numpy()
        cols = len(grid_seeds)
        rows = math.ceil(len(reals) / cols)
        pad = np.full((rows * cols - len(reals), *reals.shape[1:]), 255, np.uint8)
        reals = np.concatenate([reals, pad]).reshape(rows, cols, res, res, -1).transpose(0, 2, 1, 3, 4)
        save_png(reals.reshape(rows * res, cols * res, -1), samples_dir / "reals.png")

    g_dict = G.config.to_dict()
    extra = {
        "options": dataclasses.asdict(options),
        "precision": precision,
        "class_names": dataset.class_names if G.config.c_dim else [],
        "class_attributes": dataset.class_attributes if G.config.c_dim else [],
        "generator_config": g_dict,
        "initialized_from": parent_info,
    }
    log(
        f"training {sum(p.numel() for p in G.parameters()) / 1e6:.2f}M-parameter G and "
        f"{sum(p.numel() for p in D.parameters()) / 1e6:.2f}M-parameter D at {res}×{res}, {G.config.c_dim} classes, "
        f"{len(dataset)} images, batch {options.batch}, {precision} on {hardware_description(device)}; "
        f"target {total_nimg / 1000:g} kimg"
    )

    # On the CPU the fast path is for inference; the no-grad parts of a training step
    # (fakes for D, bf16 autocast) stay on the references too.
    use_reference = device.type == "cpu" or options.reference_ops
    ops_context = ops.use_reference_ops if use_reference else contextlib.nullcontext
    start = time.perf_counter()
    session_start_nimg = counters.cur_nimg
    tick_time, tick_nimg = start, counters.cur_nimg
    last_snapshot = counters.cur_nimg // max(int(options.snapshot_kimg * 1000), 1)
    stats: dict[str, float] = {}
    base_seconds = counters.train_seconds
    stop_reason = "done"

    def snapshot(final: bool = False) -> None:
        counters.train_seconds = base_seconds + time.perf_counter() - start
        G_ema.eval()
        grid = sample_grid(G_ema, classes, grid_seeds, device)
        save_png(grid, samples_dir / f"fakes{counters.cur_nimg // 1000:06d}.png")
        save_checkpoint(run_dir, G, G_ema, D, G_opt, D_opt, counters, sampler, device, extra)

    while counters.cur_nimg < total_nimg:
        with ops_context():
            # Generator step (none while a fine-tuning run's new discriminator warms up).
            if counters.cur_nimg >= d_warmup_nimg:
                D.requires_grad_(False)
                (G.mapping if options.mapping_only else G).requires_grad_(True)
                idx = torch.randint(len(dataset), (options.batch,), generator=sampler)
                _, gen_c = dataset.batch(idx, device)
                z = torch.randn(options.batch, G.config.z_dim, device=device)
                G_opt.zero_grad(set_to_none=True)
                g_loss, g_stats = loss.generator_loss(z, gen_c)
                g_loss.backward()
                G_opt.step()
                stats.update(g_stats)

            # Discriminator step (+ lazy R1).
            G.requires_grad_(False)
            D.requires_grad_(True)
            idx = torch.randint(len(dataset), (options.batch,), generator=sampler)
            real, real_c = dataset.batch(idx, device)
            idx = torch.randint(len(dataset), (options.batch,), generator=sampler)
            _, gen_c = dataset.batch(idx, device)
            z = torch.randn(options.batch, G.config.z_dim, device=device)
            D_opt.zero_grad(set_to_none=True)
            d_loss, d_stats = loss.discriminator_loss(real, real_c, z, gen_c)
            total = d_loss
            if counters.step % options.r1_interval == 0 and r1_gamma > 0:
                r1_loss, r1_raw = loss.r1_penalty(real, real_c)
                total = total + r1_loss
                stats["R1"] = r1_raw
            total.backward()
            D_opt.step()

        # EMA.
        counters.cur_nimg += options.batch
        counters.step += 1
        ema_nimg = ema_nimg_base
        if options.ema_rampup is not None:
            ema_nimg = min(ema_nimg, (parent_nimg + counters.cur_nimg) * options.ema_rampup)
        beta = 0.5 ** (options.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                b_ema.copy_(b)
        stats.update(d_stats)
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError(f"non-finite loss at step {counters.step}: {stats}")

        now = time.perf_counter()
        done = counters.cur_nimg >= total_nimg
        out_of_time = options.max_minutes is not None and now - start >= options.max_minutes * 60
        if now - tick_time >= options.log_seconds or done or out_of_time:
            rate = (counters.cur_nimg - tick_nimg) / max(now - tick_time, 1e-9)
            session_rate = (counters.cur_nimg - session_start_nimg) / max(now - start, 1e-9)
            eta = (total_nimg - counters.cur_nimg) / session_rate if session_rate > 0 else float("inf")
            log(
                f"kimg {counters.cur_nimg / 1000:8.2f}/{total_nimg / 1000:g}  step {counters.step:6d}  "
                f"{rate:6.1f} img/s  ETA {_format_eta(eta)}  " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items())
            )
            tick_time, tick_nimg = now, counters.cur_nimg
        snapshot_index = counters.cur_nimg // max(int(options.snapshot_kimg * 1000), 1)
        if done or out_of_time:
            stop_reason = "done" if done else "time limit"
            break
        if snapshot_index != last_snapshot:
            last_snapshot = snapshot_index
            snapshot()

    snapshot(final=True)
    seconds = counters.train_seconds
    export_dir = Path(options.export_dir) if options.export_dir else run_dir / "export"
    info = {
        "images_seen": counters.cur_nimg,
        "kimg": counters.cur_nimg / 1000,
        "steps": counters.step,
        "train_seconds": round(seconds, 1),
        "hardware": hardware_description(device),
        "precision": precision,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "dataset": str(Path(options.data).resolve()),
        "dataset_images": len(dataset),
        "dataset_source": _dataset_source(dataset),
        "class_names": extra["class_names"],
        "class_attributes": extra["class_attributes"],
        "options": extra["options"],
        "initialized_from": parent_info,
        "images_seen_total": parent_nimg + counters.cur_nimg,
        "train_seconds_total": round(seconds + (parent_info["train_seconds_total"] if parent_info else 0), 1),
        "discriminator_config": D.config.to_dict(),
        "r1_gamma": r1_gamma,
    }
    sha = export_generator(G_ema, export_dir, info)
    log(
        f"{stop_reason}: {counters.cur_nimg / 1000:g} kimg in {_format_eta(seconds)}; "
        f"G_ema exported to {export_dir} (sha256 {sha[:12]})"
    )
    return {**info, "export_dir": str(export_dir), "weights_sha256": sha, "stop_reason": stop_reason}


def _parent_info(directory: Path) -> dict[str, Any]:
    """What a fine-tuning run starts from: the parent's sha256 and, when it has a
    ``training.json``, its training (images seen and hours, its own parents included)."""
    path = directory / "training.json"
    trained = json.loads(path.read_text()) if path.is_file() else {}
    return {
        "path": str(directory.resolve()),
        "weights_sha256": file_sha256(directory / WEIGHTS_FILE),
        "images_seen_total": trained.get("images_seen_total", trained.get("images_seen", 0)),
        "train_seconds_total": trained.get("train_seconds_total", trained.get("train_seconds", 0.0)),
    }


def _dataset_source(dataset: ImageDataset) -> Any:
    path = dataset.root / "dataset.json"
    if path.is_file():
        try:
            return json.loads(path.read_text()).get("source")
        except (OSError, json.JSONDecodeError):
            return None
    return None


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
