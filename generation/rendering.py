"""The only module that talks to the engine (generation.stylegan, PyTorch).

Imported lazily by services, so web requests that never run a forward pass,
management commands and Django's app loading stay free of PyTorch.
"""

import collections
import dataclasses
import functools
import hashlib
import io
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from generation.stylegan import (
    CheckpointError,
    ModelCache,
    class_label,
    file_sha256,
    images_to_uint8,
    import_stylegan2_pickle,
    load_generator,
    save_generator,
    seed_to_z,
)
from generation.stylegan.directions import (
    ganspace_directions,
    interfacegan_direction,
    sample_w,
    seeds_to_w,
    sefa_directions,
    strength_range,
)
from generation.stylegan.identity import IDENTITY_DIR, identity_similarity, load_identity_measure

# One cache per process: a worker keeps its generators loaded between jobs.
model_cache = ModelCache(max_size=settings.MODEL_CACHE_SIZE)


class ModelUnavailable(Exception):
    """A registered model's checkpoint is missing, corrupt or not the one registered."""


@dataclass(frozen=True)
class CheckpointInfo:
    sha256: str
    config: dict
    num_ws: int
    w_dim: int


@dataclass(frozen=True)
class IdentityCalibration:
    basis: np.ndarray  # [k, w_dim] orthonormal
    typical_distance: float
    centres: np.ndarray  # [n, w_dim]: w_avg, then each class's centre (conditional models)
    centre_distance: float  # median distance of a ψ 0.7 persona from the nearest centre


def device_get():
    if settings.GENERATION_DEVICE == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.GENERATION_DEVICE


def generator_get(*, model, device):
    try:
        return model_cache.get(str(model.path), device=device, expected_sha256=model.sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(f"Model {model.slug!r} could not be loaded from {model.path}: {exc}") from exc


def latents_from_seeds(*, model, seeds, truncation_psi, class_index=None):
    """W+ latents [len(seeds), num_ws, w_dim] float32 that the mapping network
    gives `seeds` (with class label `class_index` for a conditional model)."""
    device = device_get()
    G = generator_get(model=model, device=device)
    z = torch.stack([seed_to_z(seed, G.config.z_dim) for seed in seeds]).to(device)
    c = class_label(G.config, class_index)
    c = None if c is None else c[None].repeat(len(seeds), 1).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_centre=model.truncation_centre)
    return ws.cpu().numpy().astype(np.float32)


def latent_from_seed(*, model, seed, truncation_psi, class_index=None):
    """The W+ latent [num_ws, w_dim] float32 that the mapping network gives `seed`."""
    return latents_from_seeds(model=model, seeds=[seed], truncation_psi=truncation_psi, class_index=class_index)[0]


def latents_thumbnails(*, model, latents):
    """PNG bytes of each W+ latent in `latents` [N, num_ws, w_dim], rendered as one batch."""
    device = device_get()
    G = generator_get(model=model, device=device)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(np.asarray(latents, dtype=np.float32)).to(device), noise_mode="const")
    return [pixels_to_png(pixels) for pixels in images_to_uint8(img)]


@dataclass(frozen=True)
class BatchRender:
    pixels: list  # [R, R, C] uint8 per input, in input order
    device: str
    dtype: str
    load_ms: float
    render_ms: float


def latents_render_batch(*, model, latents, noise_seeds, batch_size):
    """Render W+ latents [N, num_ws, w_dim] with their noise seeds (None: the
    model's constant noise) in forward passes of at most `batch_size`."""
    started = time.perf_counter()
    device = device_get()
    G = generator_get(model=model, device=device)
    loaded = time.perf_counter()
    latents = np.asarray(latents, dtype=np.float32)
    pixels = []
    for first in range(0, len(latents), batch_size):
        ws = torch.from_numpy(latents[first : first + batch_size]).to(device)
        with torch.no_grad():
            img = G.synthesis(ws, noise_mode="seeded", noise_seeds=list(noise_seeds[first : first + batch_size]))
        pixels.extend(images_to_uint8(img))
    if device == "cuda":
        torch.cuda.synchronize()
    rendered = time.perf_counter()
    # Half precision where the engine uses it (CUDA, the top resolutions), float32 elsewhere.
    dtype = "float16-mixed" if device == "cuda" and G.config.num_fp16_res else "float32"
    return BatchRender(
        pixels=pixels,
        device=device,
        dtype=dtype,
        load_ms=round((loaded - started) * 1000, 1),
        render_ms=round((rendered - loaded) * 1000, 1),
    )


def pixels_to_png(pixels):
    """PNG bytes of [R, R, C] uint8 pixels."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def identity_measure_get(*, model):
    """`model`'s identity measure (generation.stylegan.identity): the embedding it
    ships, else the pixel fallback, or the brand-pluggable one named in
    settings.IDENTITY_MEASURES for its slug."""
    meta = Path(model.path) / IDENTITY_DIR / "identity.json"
    return _identity_measure(str(model.path), model.slug, model.sha256, meta.stat().st_mtime if meta.exists() else 0)


@functools.lru_cache(maxsize=8)
def _identity_measure(path, slug, sha256, meta_mtime):
    dotted = settings.IDENTITY_MEASURES.get(slug)
    if dotted:
        return import_string(dotted)()
    return load_identity_measure(path)


# The learned identity guard must leave room for new people: among this many personas
# of other brands, a random new persona may match (as "the same person") at most
# IDENTITY_GUARD_MATCHES of them on average, or the guard stays in W for the model.
IDENTITY_GUARD_PERSONAS = 10_000
IDENTITY_GUARD_MATCHES = 0.1
IDENTITY_CROWDING_SAMPLES = 1000


def identity_measure_describe(*, model):
    """What GeneratorModel.identity_measure records of `model`'s measure: its name and
    calibration and, for a measure fit for the guard, `persona_match_rate`: how often
    two random personas of this model (seeds at ψ 0.7) are the same person to it. A
    model whose personas look alike to its measure (the bundled default's: its faces
    differ little) would have the guard refuse most new personas once thousands are
    owned, so its `duplicate_threshold` is dropped and the guard stays in W."""
    measure = identity_measure_get(model=model)
    described = {"name": measure.name, **dataclasses.asdict(measure.calibration)}
    threshold = measure.calibration.duplicate_threshold
    if threshold is not None:
        rate = _persona_match_rate(str(model.path), model.sha256, model.c_dim, threshold)
        described["persona_match_rate"] = rate
        if rate * IDENTITY_GUARD_PERSONAS > IDENTITY_GUARD_MATCHES:
            described["duplicate_threshold"] = None
    return described


@functools.lru_cache(maxsize=4)
def _persona_match_rate(path, sha256, c_dim, threshold):
    G = model_cache.get(path, device="cpu", expected_sha256=sha256)
    measure = load_identity_measure(path)
    seeds = list(range(IDENTITY_CROWDING_SAMPLES))
    z = torch.stack([seed_to_z(seed, G.config.z_dim) for seed in seeds])
    c = None
    if c_dim:
        c = torch.nn.functional.one_hot(torch.tensor([seed % c_dim for seed in seeds]), c_dim).to(torch.float32)
    with torch.no_grad():
        pixels = np.concatenate(
            [images_to_uint8(G(z[i : i + 250], None if c is None else c[i : i + 250], truncation_psi=0.7,
                               noise_mode="const")) for i in range(0, len(seeds), 250)]
        )  # fmt: skip
    embeddings = measure.embed(pixels)
    similarity = embeddings @ embeddings.T
    pairs = similarity[np.triu_indices(len(seeds), 1)]
    return float((pairs >= threshold).mean())


def identity_score(*, model, pixels, latent, reference_latent):
    """Identity similarity of `pixels` (a render of `latent`) to a render of
    `reference_latent` under the model's identity measure: 1.0 when the latents
    are the same."""
    if np.array_equal(np.asarray(reference_latent), np.asarray(latent)):
        return 1.0
    device = device_get()
    G = generator_get(model=model, device=device)
    reference = _reference_pixels(G, model, reference_latent, device)
    return round(identity_similarity(identity_measure_get(model=model), pixels, reference), 4)


def identity_embed_latents(*, model, latents):
    """The identity embeddings [N, D] float32 of the renders of `latents` [N, num_ws, w_dim]."""
    device = device_get()
    G = generator_get(model=model, device=device)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(np.asarray(latents, dtype=np.float32)).to(device), noise_mode="const")
    return identity_measure_get(model=model).embed(images_to_uint8(img))


# A persona's reference render is the same for every asset scored against it:
# keep the last few per process instead of rendering it again for each asset.
_reference_renders = collections.OrderedDict()
REFERENCE_RENDERS_KEPT = 16


def _reference_pixels(G, model, latent, device):
    key = (model.sha256, hashlib.sha256(np.ascontiguousarray(latent, dtype=np.float32).tobytes()).hexdigest(), device)
    if key in _reference_renders:
        _reference_renders.move_to_end(key)
        return _reference_renders[key]
    pixels = _reference_renders[key] = _synthesise(G, latent, device)
    while len(_reference_renders) > REFERENCE_RENDERS_KEPT:
        _reference_renders.popitem(last=False)
    return pixels


def _synthesise(G, latent, device):
    ws = torch.from_numpy(np.array(latent, dtype=np.float32))[None].to(device)
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")
    if device == "cuda":
        torch.cuda.synchronize()
    return images_to_uint8(img)[0]


def checkpoint_describe(*, directory):
    """Load a checkpoint directory once to prove it works, and describe it."""
    try:
        sha256 = file_sha256(Path(directory) / "weights.safetensors")
        G = load_generator(str(directory), device="cpu", expected_sha256=sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(f"No usable checkpoint in {directory}: {exc}") from exc
    return CheckpointInfo(sha256=sha256, config=G.config.to_dict(), num_ws=G.config.num_ws, w_dim=G.config.w_dim)


def checkpoint_import(*, source, directory):
    """Write the checkpoint at `source` into `directory` (which must not exist)
    in our format.

    A .pkl goes through the engine's restricted unpickler (it never runs code
    from the file) and is saved as safetensors; one of our checkpoint
    directories is checked for anything but regular files (a symlink could
    smuggle in any file the server can read), loaded, then copied.
    """
    try:
        if source.is_dir():
            # Links are copied as links, then refused: the copy is what gets checked, so a
            # link swapped into the source meanwhile cannot smuggle in the file it points to.
            shutil.copytree(source, directory, symlinks=True)
            _regular_files_require(directory)
            load_generator(str(directory), device="cpu")
        elif source.suffix == ".pkl" and not source.is_symlink():
            save_generator(import_stylegan2_pickle(source), str(directory))
        else:
            raise CheckpointError(f"{source} is neither a .pkl file nor a checkpoint directory")
    except (CheckpointError, OSError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise ModelUnavailable(f"Cannot import {source}: {exc}") from exc


def _regular_files_require(directory):
    for path in sorted(Path(directory).rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise CheckpointError(f"{path} is a symlink or special file; a checkpoint holds regular files only")


# Samples of w behind GANSpace, InterFaceGAN and the strength ranges: enough for
# stable components at w_dim 512, small enough to take seconds on a CPU.
DIRECTION_SAMPLES = 2000
DIRECTIONS_PER_GROUP = 5
MAX_CLASS_DIRECTIONS = 8


def directions_compute_for(*, model):
    """Unit directions of `model` for each of its layer groups: the top SeFa
    directions of the group's layers, the top GANSpace components and, for a
    conditional model, one InterFaceGAN boundary per class (that class against
    the others). Returns dicts ready for Direction rows."""
    groups = tuple((g["name"], g["start"], g["end"]) for g in model.layer_groups)
    return list(_directions_compute(model, model.sha256, groups, tuple(model.class_names)))


# The same weights, groups and class names always give the same directions, and
# finding them takes seconds of eigen-decompositions: remember the last few.
@functools.lru_cache(maxsize=4)
def _directions_compute(model, sha256, groups, class_names):
    G = generator_get(model=model, device="cpu")
    if model.c_dim:
        per_class = max(DIRECTION_SAMPLES // model.c_dim, 50)
        classes = list(range(min(model.c_dim, MAX_CLASS_DIRECTIONS)))
        samples = [sample_w(G, per_class, seed=i * per_class, class_index=i) for i in range(model.c_dim)]
        w = np.concatenate(samples)
        labels = np.repeat(np.arange(model.c_dim), per_class)
    else:
        w, classes = sample_w(G, DIRECTION_SAMPLES, seed=0), []
    components = ganspace_directions(w, DIRECTIONS_PER_GROUP)
    boundaries = {i: interfacegan_direction(w, (labels == i).astype(np.int64)) for i in classes}
    found = []

    def add(name, kind, group, vector):
        low, high = strength_range(w, vector)
        found.append(dict(name=name, kind=kind, layer_group=group, vector=vector, strength_min=low, strength_max=high))

    for name, start, end in groups:
        rows = list(range(start, end + 1))
        for i, vector in enumerate(sefa_directions(G, rows, DIRECTIONS_PER_GROUP)):
            add(f"{name}-sefa-{i}", "sefa", name, vector)
        for i, vector in enumerate(components):
            add(f"{name}-pca-{i}", "ganspace", name, vector)
        for i, vector in boundaries.items():
            add(f"{name}-towards-{class_names[i]}", "interfacegan", name, vector)
    return tuple(found)


def direction_from_labelled_seeds(*, model, positive_seeds, negative_seeds, class_index=None, truncation_psi=0.7):
    """An InterFaceGAN boundary in W between the personas of `positive_seeds` and
    those of `negative_seeds`, with a strength range measured on the model's
    population. Returns a dict ready for a Direction row (less name and group)."""
    G = generator_get(model=model, device="cpu")
    w = seeds_to_w(G, [*positive_seeds, *negative_seeds], class_index, truncation_psi, model.truncation_centre)
    labels = np.array([1] * len(positive_seeds) + [0] * len(negative_seeds))
    vector = interfacegan_direction(w, labels)
    low, high = strength_range(sample_w(G, DIRECTION_SAMPLES, seed=0, class_index=class_index), vector)
    return dict(kind="interfacegan", vector=vector, strength_min=low, strength_max=high)


IDENTITY_BASIS_DIM = 64
IDENTITY_CALIBRATION_SAMPLES = 1000


def identity_calibrate(*, model):
    """What the identity guard needs to know about `model`: the top principal
    components of w at ψ 0.7 (the guard's projection basis; keeping ~90 % of
    distances on the models tried), the median distance between two such w,
    i.e. between the identities of two random personas, and the model's centres
    (where truncation at ψ 0 lands: w_avg and, for a conditional model, each
    class's centre, so either truncation centre is covered) with the median
    distance of such a w from the nearest of them."""
    return _identity_calibrate(str(model.path), model.sha256, model.c_dim)


# Deterministic for given weights (fixed seeds); sampling and the eigen-
# decomposition take a second or two, so remember the last few models.
@functools.lru_cache(maxsize=4)
def _identity_calibrate(path, sha256, c_dim):
    try:
        G = model_cache.get(path, device="cpu", expected_sha256=sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(f"No usable checkpoint in {path}: {exc}") from exc
    n = IDENTITY_CALIBRATION_SAMPLES
    if c_dim:
        per_class = max(n // c_dim, 1)
        w = np.concatenate(
            [sample_w(G, per_class, seed=i * per_class, class_index=i, truncation_psi=0.7) for i in range(c_dim)]
        )
    else:
        w = sample_w(G, n, seed=0, truncation_psi=0.7)
    basis = ganspace_directions(w, min(IDENTITY_BASIS_DIM, G.config.w_dim))
    pairs = np.random.RandomState(0).randint(0, len(w), size=(2000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    typical = float(np.median(np.linalg.norm(w[pairs[:, 0]] - w[pairs[:, 1]], axis=1)))
    centres = [G.mapping.w_avg.detach().cpu().numpy()[None]]
    if c_dim:
        # The engine's own class centres, so a persona at ψ 0 lies on one.
        labels = torch.stack([class_label(G.config, i) for i in range(c_dim)])
        with torch.no_grad():
            centres.append(G.mapping.class_centres(labels).cpu().numpy())
    centres = np.concatenate(centres).astype(np.float32)
    w64, c64 = w.astype(np.float64), centres.astype(np.float64)
    squared = (w64 * w64).sum(axis=1)[:, None] - 2 * (w64 @ c64.T) + (c64 * c64).sum(axis=1)[None]
    centre_distance = float(np.median(np.sqrt(np.maximum(squared.min(axis=1), 0))))
    return IdentityCalibration(basis=basis, typical_distance=typical, centres=centres, centre_distance=centre_distance)
