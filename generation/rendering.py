"""The only module that talks to the engine (generation.stylegan, PyTorch).

Imported lazily by services, so web requests that never run a forward pass,
management commands and Django's app loading stay free of PyTorch.
"""

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from PIL import Image, PngImagePlugin

from generation.stylegan import (
    CheckpointError,
    GeneratorConfig,
    ModelCache,
    file_sha256,
    images_to_uint8,
    load_generator,
    random_generator,
    save_generator,
    seed_to_z,
)

# One cache per process: a worker keeps its generators loaded between jobs.
model_cache = ModelCache(max_size=settings.MODEL_CACHE_SIZE)


# The bundled default until a trained model exists: small enough to render in
# well under a second on a CPU, and deterministic (seed 0).
PLACEHOLDER_CONFIG = dict(
    z_dim=512,
    w_dim=512,
    c_dim=0,
    img_resolution=64,
    img_channels=3,
    mapping_layers=8,
    channel_base=4096,
    channel_max=256,
    num_fp16_res=0,
    conv_clamp=None,
)
PLACEHOLDER_SEED = 0


class ModelUnavailable(Exception):
    """A registered model's checkpoint is missing, corrupt or not the one registered."""


@dataclass(frozen=True)
class CheckpointInfo:
    sha256: str
    config: dict
    num_ws: int
    w_dim: int


@dataclass(frozen=True)
class RenderedImage:
    png_bytes: bytes
    width: int
    height: int
    timings: dict


def device_get():
    if settings.GENERATION_DEVICE == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.GENERATION_DEVICE


def generator_get(*, model, device):
    try:
        return model_cache.get(str(model.path), device=device, expected_sha256=model.sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(f"Model {model.slug!r} could not be loaded from {model.path}: {exc}") from exc


def latent_from_seed(*, model, seed, truncation_psi):
    """The W+ latent [num_ws, w_dim] float32 that the mapping network gives `seed`."""
    device = device_get()
    G = generator_get(model=model, device=device)
    z = seed_to_z(seed, G.config.z_dim).to(device)[None]
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=truncation_psi)
    return ws[0].cpu().numpy().astype(np.float32)


def latent_render(*, model, latent, text_chunks):
    """Render one W+ latent to a PNG, with `text_chunks` written into it."""
    started = time.perf_counter()
    device = device_get()
    G = generator_get(model=model, device=device)
    loaded = time.perf_counter()
    ws = torch.from_numpy(np.array(latent, dtype=np.float32))[None].to(device)
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")
    if device == "cuda":
        torch.cuda.synchronize()
    rendered = time.perf_counter()
    pixels = images_to_uint8(img)[0]
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    info = PngImagePlugin.PngInfo()
    for key, value in text_chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    encoded = time.perf_counter()
    return RenderedImage(
        png_bytes=buffer.getvalue(),
        width=image.width,
        height=image.height,
        timings={
            "load_ms": round((loaded - started) * 1000, 1),
            "render_ms": round((rendered - loaded) * 1000, 1),
            "encode_ms": round((encoded - rendered) * 1000, 1),
            "device": device,
        },
    )


def checkpoint_describe(*, directory):
    """Load a checkpoint directory once to prove it works, and describe it."""
    try:
        sha256 = file_sha256(Path(directory) / "weights.safetensors")
        G = load_generator(str(directory), device="cpu", expected_sha256=sha256)
    except (CheckpointError, OSError) as exc:
        raise ModelUnavailable(f"No usable checkpoint in {directory}: {exc}") from exc
    return CheckpointInfo(sha256=sha256, config=G.config.to_dict(), num_ws=G.config.num_ws, w_dim=G.config.w_dim)


def checkpoint_write_placeholder(*, directory):
    """Write the random-weights placeholder generator; returns its sha256."""
    G = random_generator(GeneratorConfig(**PLACEHOLDER_CONFIG), seed=PLACEHOLDER_SEED)
    return save_generator(G, str(directory))
