import logging

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse, HttpResponseNotFound

from brands.selectors import brand_for_member

from .formats import draft_mark
from .selectors import asset_get

log = logging.getLogger(__name__)

MISSING_IMAGE = "The image file for this asset is missing from storage."


@login_required
def asset_image(request, brand_slug, asset_id):
    """An asset's preview, for members of its brand only: its thumbnail (stored
    with the DRAFT mark), or for renders made before thumbnails existed, its
    master with the DRAFT mark drawn on now. Every asset is a draft until approved."""
    brand = brand_for_member(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=brand, asset_id=asset_id)
    if asset.thumbnail:
        try:
            return FileResponse(asset.thumbnail.open("rb"), content_type="image/webp")
        except FileNotFoundError:
            pass  # fall back to the master below
    try:
        image = asset.image.open("rb")
    except FileNotFoundError:
        storage = asset.image.storage  # __class__, not type(): default_storage is a lazy proxy
        log.error(
            "Asset %s of brand %s: image file %r is missing from storage %s at %s",
            asset.pk, brand.slug, asset.image.name, storage.__class__.__name__, getattr(storage, "location", "?"),
        )  # fmt: skip
        return HttpResponseNotFound(MISSING_IMAGE, content_type="text/plain; charset=utf-8")
    with image:
        return HttpResponse(draft_mark(image.read()), content_type="image/png")
