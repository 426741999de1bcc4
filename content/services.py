from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record

from .formats import disclosure_embed
from .models import Asset


def asset_file_save(*, persona, png_bytes):
    """Write a rendered PNG to storage, its AI-content disclosure (IPTC
    DigitalSourceType trainedAlgorithmicMedia in XMP, naming the generator,
    the persona and the brand; a draft until approved) written into the file,
    and return its name. Done before the row's transaction; the caller deletes
    the file if that transaction fails."""
    disclosed = disclosure_embed(
        png_bytes, fmt="master", generator=persona.model.slug, persona=f"@{persona.handle}", brand=persona.brand.name
    )
    name = f"assets/{timezone.now():%Y/%m}/{persona.brand.slug}-{persona.handle}.png"
    return default_storage.save(name, ContentFile(disclosed))


@transaction.atomic
def asset_create(*, actor, persona, version, job, image_name, width, height, provenance, identity_consistency=None):
    asset = Asset.objects.create(
        brand=persona.brand,
        persona=persona,
        version=version,
        job=job,
        image=image_name,
        width=width,
        height=height,
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
            "image": image_name,
            "identity_consistency": identity_consistency,
        },
    )
    return asset
