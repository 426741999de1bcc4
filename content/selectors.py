from django.http import Http404

from .models import Asset


def assets_for_persona(*, brand, persona, limit=12):
    return list(Asset.objects.for_brand(brand).filter(persona=persona).select_related("version")[:limit])


def asset_get(*, brand, asset_id):
    asset = Asset.objects.for_brand(brand).filter(pk=asset_id).first()
    if asset is None:
        raise Http404("No such asset")
    return asset


def assets_for_brand(*, brand, persona_id=None, campaign_id=None, output_format=None):
    """The brand's assets, newest first, narrowed by persona, campaign (through the
    job's campaign item) and format where given. An id that is not a number, or that
    names another brand's persona or campaign, narrows to nothing."""
    assets = Asset.objects.for_brand(brand).select_related("persona").order_by("-created_at", "-id")
    for lookup, value in (("persona_id", persona_id), ("job__campaign_item__campaign_id", campaign_id)):
        if value is None or value == "":
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            return assets.none()
        if not 0 < number < 2**63:
            return assets.none()
        assets = assets.filter(**{lookup: number})
    if output_format:
        assets = assets.filter(output_format=output_format)
    return assets
