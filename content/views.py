import logging

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse, HttpResponseNotFound

from brands.selectors import brand_for_member

from .formats import draft_mark
from .selectors import asset_get
from .services import asset_file_open

log = logging.getLogger(__name__)

MISSING_IMAGE = "The image file for this asset is missing from storage."


@login_required
def asset_image(request, brand_slug, asset_id):
    """An asset's preview, for members of its brand only. Approved and released: its
    released thumbnail, without the DRAFT mark. Otherwise a draft: its thumbnail (stored
    with the mark), or for renders made before thumbnails existed, its master with the
    mark drawn on now."""
    brand = brand_for_member(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=brand, asset_id=asset_id)
    if asset.released:
        try:
            released, _ = asset_file_open(asset=asset, kind="thumbnail")
            return FileResponse(released, content_type="image/webp")
        except FileNotFoundError:
            # The draft below is never wrong to show, only less finished.
            log.error("Asset %s of brand %s: released thumbnail %r is missing from storage",
                      asset.pk, brand.slug, asset.released_thumbnail.name)  # fmt: skip
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
