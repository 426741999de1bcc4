import logging

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseNotFound

from brands.selectors import brand_for_member

from .selectors import asset_get

log = logging.getLogger(__name__)

MISSING_IMAGE = "The image file for this asset is missing from storage."


@login_required
def asset_image(request, brand_slug, asset_id):
    """Stream an asset's image to members of its brand only."""
    brand = brand_for_member(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=brand, asset_id=asset_id)
    try:
        image = asset.image.open("rb")
    except FileNotFoundError:
        storage = asset.image.storage  # __class__, not type(): default_storage is a lazy proxy
        log.error(
            "Asset %s of brand %s: image file %r is missing from storage %s at %s",
            asset.pk, brand.slug, asset.image.name, storage.__class__.__name__, getattr(storage, "location", "?"),
        )  # fmt: skip
        return HttpResponseNotFound(MISSING_IMAGE, content_type="text/plain; charset=utf-8")
    return FileResponse(image, content_type="image/png")
