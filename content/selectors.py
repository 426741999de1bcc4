from django.http import Http404

from .models import Asset


def assets_for_persona(*, brand, persona, limit=12):
    return list(Asset.objects.for_brand(brand).filter(persona=persona).select_related("version")[:limit])


def asset_get(*, brand, asset_id):
    asset = Asset.objects.for_brand(brand).filter(pk=asset_id).first()
    if asset is None:
        raise Http404("No such asset")
    return asset
