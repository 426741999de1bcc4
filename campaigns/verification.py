"""Asset verification: re-render an asset from its provenance alone and compare pixels.

The provenance names the model (by sha256), the persona version (by latent sha256), the
recipe (look and pose library items, format, variant), the noise seed and the size of the
forward pass the image was rendered in. Verification finds each of those again, rebuilds
the latent, checks it hashes to the recorded `rendered_latent_sha256`, renders it in a
forward pass of the recorded size (the convolution algorithm, and so the last bits of a
float, depend on the batch size, not on the other images in it), applies the same format,
and compares the decoded master pixels:

- "bit-exact": every pixel equal. Expected on the device and dtype that made the asset.
- "within tolerance": mean |difference| <= MEAN_TOLERANCE and max |difference| <=
  MAX_TOLERANCE levels of 255. Expected across devices: CPU float32 against CUDA with its
  float16 top layers round differently, and LANCZOS spreads a one-level difference of the
  64 px output over its neighbours.
- "mismatch": anything else, or a latent that no longer hashes the same (a library item
  changed, a version missing): the report says which.
"""

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from avatars.models import LibraryItem, PersonaVersion
from content.formats import format_render
from generation.models import GeneratorModel

from .services import recipe_build

MEAN_TOLERANCE = 0.5
MAX_TOLERANCE = 8


@dataclass(frozen=True)
class Verification:
    result: str  # "bit-exact", "within tolerance" or "mismatch"
    detail: str
    max_difference: int | None = None
    mean_difference: float | None = None
    device: str = ""
    dtype: str = ""

    @property
    def ok(self):
        return self.result != "mismatch"


def asset_verify(*, actor, brand, asset):
    """Re-render `asset` (one of `brand`'s) from its provenance and compare its pixels."""
    from generation.rendering import latents_render_batch, pixels_to_png

    provenance = asset.metadata.get("provenance", {})
    model = GeneratorModel.objects.filter(sha256=provenance.get("model_sha256")).first()
    if model is None:
        return Verification("mismatch", "No registered model has the weights this asset was rendered with.")
    version = (
        PersonaVersion.objects.for_brand(brand)
        .filter(persona=asset.persona, sha256=provenance.get("latent_sha256"))
        .select_related("persona__model")
        .first()
    )
    if version is None:
        return Verification("mismatch", "The persona version this asset was rendered from is gone.")
    recipe = provenance.get("recipe") or {}
    items = {}
    for kind in ("look", "pose"):
        wanted = recipe.get(kind)
        if wanted:
            items[kind] = LibraryItem.objects.for_brand(brand).filter(pk=wanted["id"]).first()
            if items[kind] is None:
                return Verification("mismatch", f"The {kind} {wanted['name']!r} is no longer in the library.")
    recipe = recipe_build(actor=actor, brand=brand, version=version, look=items.get("look"), pose=items.get("pose"))
    latent = recipe.latent
    latent_sha256 = hashlib.sha256(np.ascontiguousarray(latent, dtype="<f4").tobytes()).hexdigest()
    if latent_sha256 != provenance.get("rendered_latent_sha256"):
        return Verification("mismatch", "The recipe no longer gives the latent this asset was rendered from.")
    size = int(provenance.get("forward_batch_size") or 1)
    seed = provenance.get("noise_seed")
    batch = latents_render_batch(model=model, latents=np.repeat(latent[None], size, axis=0), noise_seeds=[seed] * size,
                                 batch_size=size)  # fmt: skip
    png = pixels_to_png(batch.pixels[0])
    output_format = asset.output_format
    rendered = _pixels(format_render(png, output_format) if output_format else png)
    with asset.image.open("rb") as stored_file:
        stored = _pixels(stored_file.read())
    if rendered.shape != stored.shape:
        return Verification("mismatch", f"Sizes differ: {stored.shape} stored, {rendered.shape} rendered.")
    difference = np.abs(rendered.astype(np.int16) - stored.astype(np.int16))
    max_difference, mean_difference = int(difference.max()), float(difference.mean())
    same_setup = (batch.device, batch.dtype) == (provenance.get("device"), provenance.get("dtype"))
    if max_difference == 0:
        result, detail = "bit-exact", "Every pixel matches."
    elif max_difference <= MAX_TOLERANCE and mean_difference <= MEAN_TOLERANCE:
        result = "within tolerance"
        detail = f"Pixels differ by at most {max_difference} levels (mean {mean_difference:.3f})"
        detail += "." if not same_setup else ", although device and dtype are the same as the original's."
    else:
        result = "mismatch"
        detail = f"Pixels differ by up to {max_difference} levels (mean {mean_difference:.3f})."
    return Verification(
        result, detail, max_difference=max_difference, mean_difference=mean_difference, device=batch.device,
        dtype=batch.dtype,
    )  # fmt: skip


def _pixels(image_bytes):
    with Image.open(io.BytesIO(image_bytes)) as image:
        return np.asarray(image.convert("RGB"))
