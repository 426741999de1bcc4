import hashlib
import io
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from audit.services import audit_record

from .c2pa import SigningFailed, brand_signer_get, c2pa_sign
from .formats import asset_renditions
from .models import Asset


class StorageFailed(Exception):
    """A file of an asset could not be written; nothing written for it is kept."""


@dataclass(frozen=True)
class AssetFiles:
    image: str
    web: str
    thumbnail: str
    sha256: str
    width: int
    height: int
    output_format: str

    @property
    def names(self):
        return [self.image, self.web, self.thumbnail]


def asset_file_names(*, brand_slug, job_id, attempt):
    """Where one render attempt of a job writes its files: fixed names, so that
    a later attempt can remove what a killed one left behind (asset_files_write),
    and so no file of a job exists unless its asset row refers to it."""
    stem = f"assets/{brand_slug}/job-{job_id}-a{attempt}"
    return {"image": f"{stem}.png", "web": f"{stem}-web.jpg", "thumbnail": f"{stem}-thumb.webp"}


FILE_MIME_TYPES = {"image": "image/png", "web": "image/jpeg", "thumbnail": "image/webp"}


@dataclass(frozen=True)
class PreparedFiles:
    """An asset's files made but not yet stored: {"image", "web", "thumbnail"} bytes."""

    contents: dict
    sha256: str
    width: int
    height: int
    output_format: str
    encode_ms: float = 0.0


def asset_files_prepare(*, job, attempt, png_bytes, output_format, signer):
    """Make a rendered image's files, in memory: the PNG master (the generator's
    output, or its `output_format` at publishable size) with its AI-content
    disclosure (IPTC DigitalSourceType trainedAlgorithmicMedia in XMP, naming the
    generator, the persona and the brand; a draft until approved), and its web
    (JPEG) and thumbnail (WebP) derivatives, both with the visible DRAFT mark.
    Each of the three then gets a C2PA manifest signed with the brand's key
    (`signer`, from content.c2pa.brand_signer_get), which covers its disclosure too.

    CPU work only, no database or storage (the job's persona, brand and model
    must be loaded): workers run it in threads. Raises StorageFailed when the
    files cannot be signed."""
    persona = job.persona
    names = asset_file_names(brand_slug=persona.brand.slug, job_id=job.pk, attempt=attempt)
    renditions = asset_renditions(
        png_bytes,
        fmt=output_format or None,
        generator=persona.model.slug,
        persona=f"@{persona.handle}",
        brand=persona.brand.name,
    )
    unsigned = {"image": renditions["master"], "web": renditions["web"], "thumbnail": renditions["thumbnail"]}
    try:
        contents = {
            kind: c2pa_sign(
                data,
                mime=FILE_MIME_TYPES[kind],
                brand=persona.brand,
                generator=persona.model.slug,
                persona=f"@{persona.handle}",
                title=names[kind].rpartition("/")[2],
                signer=signer,
            )
            for kind, data in unsigned.items()
        }
    except SigningFailed as exc:
        raise StorageFailed(f"Signing the image failed: {exc}") from exc
    with Image.open(io.BytesIO(contents["image"])) as image:
        width, height = image.size
    return PreparedFiles(
        contents=contents,
        sha256=hashlib.sha256(contents["image"]).hexdigest(),
        width=width,
        height=height,
        output_format=output_format,
    )


def asset_files_write(*, job, attempt, prepared):
    """Store prepared files through Django's storage API under the job's and
    attempt's names. Files of the job's earlier attempts (a worker killed
    between writing and committing) are removed first.

    Called before the asset row's transaction; the caller removes the files if
    that transaction does not commit. Raises StorageFailed, having removed
    whatever it wrote, when storage refuses a file."""
    brand_slug = job.persona.brand.slug
    names = asset_file_names(brand_slug=brand_slug, job_id=job.pk, attempt=attempt)
    for earlier in range(1, attempt):
        _names_delete(asset_file_names(brand_slug=brand_slug, job_id=job.pk, attempt=earlier).values())
    written = []
    try:
        for kind, name in names.items():
            # A file left by this very attempt number (a takeover raced a lease) goes first.
            default_storage.delete(name)
            saved = default_storage.save(name, ContentFile(prepared.contents[kind]))
            written.append(saved)
            if saved != name:
                raise OSError(f"storage stored {name} as {saved}")
    except Exception as exc:
        _names_delete(written)
        raise StorageFailed(f"Storing the image failed: {type(exc).__name__}: {exc}") from exc
    return AssetFiles(
        image=names["image"],
        web=names["web"],
        thumbnail=names["thumbnail"],
        sha256=prepared.sha256,
        width=prepared.width,
        height=prepared.height,
        output_format=prepared.output_format,
    )


def asset_files_save(*, job, attempt, png_bytes, output_format):
    """asset_files_prepare then asset_files_write, with the brand's key read now.
    Raises StorageFailed (nothing written) when the key cannot be used."""
    prepared = asset_files_prepare(
        job=job, attempt=attempt, png_bytes=png_bytes, output_format=output_format,
        signer=brand_signer_get(brand=job.persona.brand),
    )  # fmt: skip
    return asset_files_write(job=job, attempt=attempt, prepared=prepared)


def asset_files_delete(*, files):
    _names_delete(files.names)


def asset_files_delete_for_job(*, brand_slug, job_id, attempts):
    """Remove whatever attempts 1..attempts of a job may have left (a job given up on)."""
    for attempt in range(1, attempts + 1):
        _names_delete(asset_file_names(brand_slug=brand_slug, job_id=job_id, attempt=attempt).values())


def _names_delete(names):
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001 - best effort: a file we could not remove is logged by storage
            pass


@transaction.atomic
def asset_create(*, actor, persona, version, job, files, provenance, identity_consistency=None):
    asset = Asset.objects.create(
        brand=persona.brand,
        persona=persona,
        version=version,
        job=job,
        image=files.image,
        web=files.web,
        thumbnail=files.thumbnail,
        output_format=files.output_format,
        sha256=files.sha256,
        width=files.width,
        height=files.height,
        identity_consistency=identity_consistency,
        metadata={
            "provenance": provenance,
            "disclosure": {"ai_generated": True, "label": "AI-generated image"},
        },
    )
    audit_record(
        actor=actor,
        brand=persona.brand,
        action="asset.created",
        target=asset,
        after={
            "persona": persona.handle,
            "version": version.number,
            "job": job.pk if job else None,
            "image": files.image,
            "sha256": files.sha256,
            "identity_consistency": identity_consistency,
        },
    )
    return asset
