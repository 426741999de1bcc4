from django.contrib.auth.decorators import login_required
from django.http import FileResponse

from brands.selectors import brand_for_member

from .selectors import asset_get


@login_required
def asset_image(request, brand_slug, asset_id):
    """Stream an asset's image to members of its brand only."""
    brand = brand_for_member(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=brand, asset_id=asset_id)
    return FileResponse(asset.image.open("rb"), content_type="image/png")
