import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from avatars.models import LibraryItem
from avatars.services import library_item_create, persona_render_submit
from campaigns.selectors import campaign_items
from campaigns.services import campaign_submit
from campaigns.verification import asset_verify
from generation.services.jobs import generation_job_run


def rendered_campaign(owner, brand, persona, **matrix):
    campaign = campaign_submit(actor=owner, brand=brand, name="Verify", versions=[persona.current_version], **matrix)
    items = campaign_items(brand=brand, campaign=campaign)
    generation_job_run(job_id=items[0].job_id)
    return [item.job.asset for item in campaign_items(brand=brand, campaign=campaign)]


def test_it_reproduces_every_pixel_of_a_campaign_asset_from_its_provenance(owner, brand, persona, media_root):
    look = library_item_create(
        actor=owner, brand=brand, model=persona.model, kind="look", name="Denim", layer_group="fine", seed=500
    )
    assets = rendered_campaign(owner, brand, persona, looks=[look], formats=["1:1", "9:16"], variants=3)

    for asset in assets:
        verification = asset_verify(actor=owner, brand=brand, asset=asset)
        assert (verification.result, verification.max_difference) == ("bit-exact", 0), verification.detail


def test_it_reproduces_a_plain_render(owner, brand, persona, media_root):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    generation_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert asset_verify(actor=owner, brand=brand, asset=job.asset).result == "bit-exact"


def test_it_reports_a_mismatch_when_the_stored_pixels_were_changed(owner, brand, persona, media_root):
    [asset] = rendered_campaign(owner, brand, persona, formats=["1:1"], variants=1)
    pixels = np.asarray(Image.open(default_storage.open(asset.image.name)).convert("RGB")).copy()
    pixels[500:600, 500:600] = 255 - pixels[500:600, 500:600]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    default_storage.delete(asset.image.name)
    default_storage.save(asset.image.name, ContentFile(buffer.getvalue()))

    verification = asset_verify(actor=owner, brand=brand, asset=asset)
    assert verification.result == "mismatch" and verification.max_difference > 100


def test_it_reports_a_mismatch_when_the_recipe_no_longer_gives_the_latent(owner, brand, persona, media_root):
    look = library_item_create(
        actor=owner, brand=brand, model=persona.model, kind="look", name="Denim", layer_group="fine", seed=500
    )
    [asset] = rendered_campaign(owner, brand, persona, looks=[look], formats=["1:1"], variants=1)
    # Library items are never edited by the product; a direct database change is caught.
    changed = look.source_array() + np.float32(0.5)
    LibraryItem.objects.for_brand(brand).filter(pk=look.pk).update(source_latent=changed.astype("<f4").tobytes())

    verification = asset_verify(actor=owner, brand=brand, asset=asset)
    assert verification.result == "mismatch" and "no longer gives the latent" in verification.detail
