import hashlib
import io
import posixpath
import secrets
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from audit.services import audit_record
from common.events import event_emit

from .c2pa import APPROVAL_KEYS, SigningFailed, brand_signer_get, c2pa_sign, c2pa_sign_release
from .formats import asset_renditions, disclosure_read, draft_mark, released_renditions
from .models import Asset


class StorageFailed(Exception):
    """A file of an asset could not be written; nothing written for it is kept."""


class ReleaseRefused(Exception):
    """An approval does not cover the asset's content as stored: nothing was released."""


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
    # --- webhooks (#16): emitted after the job's transaction commits.
    event_emit(
        name="asset.created",
        brand=persona.brand,
        payload={
            "asset_id": asset.pk,
            "persona_id": persona.pk,
            "version_id": version.pk,
            "job_id": job.pk if job else None,
            "output_format": asset.output_format,
            "width": asset.width,
            "height": asset.height,
            "sha256": asset.sha256,
            "identity_consistency": identity_consistency,
        },
    )
    return asset


# --------------------------------------------------------------------------- releasing approved files

# kind -> (draft field, released field, MIME type, file extension)
FILE_KINDS = {
    "master": ("image", "released_image", "image/png", "png"),
    "web": ("web", "released_web", "image/jpeg", "jpg"),
    "thumbnail": ("thumbnail", "released_thumbnail", "image/webp", "webp"),
}
RELEASED_FIELDS = ("released_image", "released_web", "released_thumbnail", "released_at", "metadata")


def release_file_names(*, asset, token):
    """Where a release of the asset writes its files: beside the draft master, named after
    it. `token` is new for every release, so a withdrawal's deletion after commit can never
    hit the files of a release made after it."""
    stem = posixpath.splitext(asset.image.name)[0]
    return {
        "master": f"{stem}-approved-{token}.png",
        "web": f"{stem}-approved-{token}-web.jpg",
        "thumbnail": f"{stem}-approved-{token}-thumb.webp",
    }


def asset_release(*, asset, approval):
    """Make and store the approved asset's files without the DRAFT mark, and point the
    asset at them. `approval`: {"review_id", "approved_by" (usernames), "approved_at"
    (ISO 8601), "workflow", "revision", "content_sha256"}.

    The master keeps the stored master's pixels and gets a new C2PA manifest, signed with
    the brand's key, whose parent ingredient is the stored (draft) master and which records
    the approval; web JPEG and thumbnail WebP are made from it without the mark, each
    signed with the approved master as parent (content.c2pa.c2pa_sign_release).

    Raises ReleaseRefused, with nothing written, when content_sha256 is not the asset's
    sha256 or the stored master's bytes no longer hash to it; ValueError when a key of the
    approval is missing; StorageFailed when signing or storage fails (whatever was written
    removed). Idempotent: an asset already released under the same approval is returned
    as it is; released under another approval, it is released again and the former files
    are removed after commit.

    Files are written before the row is updated, in one short transaction with its audit
    row; if that transaction fails they are removed. Call it outside any transaction (from
    the approval's on_commit or a task): an enclosing one that rolls back afterwards would
    leave the files behind with no row pointing at them."""
    missing = [key for key in APPROVAL_KEYS if key not in approval]
    if missing:
        raise ValueError(f"an approval needs {', '.join(missing)}")
    approval = {key: approval[key] for key in APPROVAL_KEYS}
    current = Asset.objects.for_brand(asset.brand).select_related("brand", "persona__model").get(pk=asset.pk)
    if not current.sha256 or current.sha256 != approval["content_sha256"]:
        raise ReleaseRefused(
            f"Asset {current.pk}: the approval covers content {approval['content_sha256']!r}, "
            f"the asset is {current.sha256!r}; nothing was released"
        )
    if _released_under(current, approval):
        _released_copy(current, asset)
        return asset
    try:
        with current.image.open("rb") as stored:
            draft = stored.read()
    except FileNotFoundError:
        raise ReleaseRefused(f"Asset {current.pk}: its master {current.image.name!r} is missing from storage") from None
    if hashlib.sha256(draft).hexdigest() != current.sha256:
        raise ReleaseRefused(
            f"Asset {current.pk}: its stored master no longer hashes to {current.sha256}; nothing was released"
        )
    names = release_file_names(asset=current, token=secrets.token_hex(6))
    contents = _release_files_prepare(asset=current, draft=draft, approval=approval, names=names)
    written = _release_files_write(names=names, contents=contents)
    try:
        released = _release_record(asset=current, names=names, approval=approval)
    except BaseException:
        _names_delete(written)
        raise
    if released is None:  # another call released it under this approval meanwhile
        _names_delete(written)
        released = Asset.objects.for_brand(current.brand).get(pk=current.pk)
    _released_copy(released, asset)
    return asset


def _released_under(asset, approval):
    return asset.released and asset.metadata.get("release", {}).get("approval") == approval


def _released_copy(source, target):
    for field in RELEASED_FIELDS:
        setattr(target, field, getattr(source, field))


def _release_files_prepare(*, asset, draft, approval, names):
    """The three released files, signed, each titled with its name: CPU work, no storage."""
    found = disclosure_read(draft)
    # What the draft itself says, so the approved files describe it in the same words.
    generator = found["generator"] or asset.metadata.get("provenance", {}).get("model") or asset.persona.model.slug
    who = {"generator": generator, "persona": found["persona"] or f"@{asset.persona.handle}"}
    brand = asset.brand
    unsigned = released_renditions(draft, fmt=asset.output_format or None, brand=found["brand"] or brand.name, **who)
    signer = brand_signer_get(brand=brand)
    try:
        master = c2pa_sign_release(
            unsigned["master"],
            mime=FILE_KINDS["master"][2],
            brand=brand,
            parent_bytes=draft,
            parent_mime=FILE_KINDS["master"][2],
            parent_title=posixpath.basename(asset.image.name),
            title=posixpath.basename(names["master"]),
            approval=approval,
            signer=signer,
            **who,
        )
        contents = {"master": master}
        for kind in ("web", "thumbnail"):
            contents[kind] = c2pa_sign_release(
                unsigned[kind],
                mime=FILE_KINDS[kind][2],
                brand=brand,
                parent_bytes=master,
                parent_mime=FILE_KINDS["master"][2],
                parent_title=posixpath.basename(names["master"]),
                title=posixpath.basename(names[kind]),
                approval=approval,
                transcoded=True,
                signer=signer,
                **who,
            )
    except SigningFailed as exc:
        raise StorageFailed(f"Signing the approved image failed: {exc}") from exc
    return contents


def _release_files_write(*, names, contents):
    written = []
    try:
        for kind, name in names.items():
            saved = default_storage.save(name, ContentFile(contents[kind]))
            written.append(saved)
            if saved != name:
                raise OSError(f"storage stored {name} as {saved}")
    except Exception as exc:
        _names_delete(written)
        raise StorageFailed(f"Storing the approved image failed: {type(exc).__name__}: {exc}") from exc
    return written


@transaction.atomic
def _release_record(*, asset, names, approval):
    """Point the asset at its released files, with its audit row; None when it is already
    released under this approval (a concurrent call won)."""
    asset = Asset.objects.for_brand(asset.brand).select_for_update().select_related("brand").get(pk=asset.pk)
    if asset.sha256 != approval["content_sha256"]:
        raise ReleaseRefused(f"Asset {asset.pk} changed while its approved files were made; nothing was released")
    if _released_under(asset, approval):
        return None
    before = _release_summary(asset) if asset.released else None
    former = _released_names(asset)
    asset.released_image = names["master"]
    asset.released_web = names["web"]
    asset.released_thumbnail = names["thumbnail"]
    asset.released_at = timezone.now()
    asset.metadata = {**asset.metadata, "release": {"approval": approval}}
    asset.save(update_fields=list(RELEASED_FIELDS))
    audit_record(
        actor=None,
        brand=asset.brand,
        action="asset.released",
        target=asset,
        before=before,
        after=_release_summary(asset),
    )
    if former:
        transaction.on_commit(lambda: _names_delete(former))
    return asset


def _release_summary(asset):
    return {
        **asset.metadata.get("release", {}).get("approval", {}),
        "image": asset.released_image.name,
        "web": asset.released_web.name,
        "thumbnail": asset.released_thumbnail.name,
    }


def _released_names(asset):
    return [name for name in (getattr(asset, field).name for field in RELEASED_FIELDS[:3]) if name]


def asset_release_withdraw(*, asset, reason):
    """Take an asset's approved files back (its approval lapsed): the asset is a draft
    again, served with the DRAFT mark; the released files are deleted after commit.
    Nothing happens to an asset that is not released. Returns the asset."""
    with transaction.atomic():
        locked = Asset.objects.for_brand(asset.brand).select_for_update().select_related("brand").get(pk=asset.pk)
        if not locked.released and not _released_names(locked):
            _released_copy(locked, asset)
            return asset
        before = _release_summary(locked)
        former = _released_names(locked)
        locked.released_image = locked.released_web = locked.released_thumbnail = ""
        locked.released_at = None
        locked.metadata = {key: value for key, value in locked.metadata.items() if key != "release"}
        locked.save(update_fields=list(RELEASED_FIELDS))
        audit_record(
            actor=None,
            brand=locked.brand,
            action="asset.release_withdrawn",
            target=locked,
            before=before,
            after={"reason": reason},
        )
        transaction.on_commit(lambda: _names_delete(former))
    _released_copy(locked, asset)
    return asset


def asset_file_open(*, asset, kind):
    """An asset's file to serve or download: (an open binary file, or bytes, released).
    Released: the approved file. Otherwise the draft: the stored web JPEG or thumbnail
    (marked when made), or the master with the DRAFT mark drawn on now (bytes, PNG).
    Raises ValueError for an unknown kind, FileNotFoundError when the asset has no such
    file or storage lost it."""
    try:
        draft_field, released_field, _mime, _extension = FILE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown file kind {kind!r}; allowed: {', '.join(FILE_KINDS)}") from None
    field = getattr(asset, released_field if asset.released else draft_field)
    if not field:
        raise FileNotFoundError(f"asset {asset.pk} has no {'released ' if asset.released else ''}{kind}")
    # Through storage, not FieldFile.open: a FieldFile keeps its first file object and
    # cannot reopen it once storage lost the file, raising ValueError instead.
    opened = field.storage.open(field.name, "rb")
    if asset.released:
        return opened, True
    if kind != "master":
        return opened, False
    with opened:
        return draft_mark(opened.read()), False


def asset_download_name(*, brand, asset, kind):
    """The name an asset's file downloads under: brand, persona, id and kind, "-draft"
    unless it is released (the name says which one the recipient holds)."""
    extension = FILE_KINDS[kind][3]
    suffix = "" if asset.released else "-draft"
    return f"{brand.slug}-{asset.persona.handle}-{asset.pk}-{kind}{suffix}.{extension}"
