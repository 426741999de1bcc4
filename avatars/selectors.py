from django.db.models import Q
from django.http import Http404

from .models import LibraryItem, Persona, PersonaVersion


def personas_for_brand(*, brand):
    return Persona.objects.for_brand(brand).select_related("model")


def persona_get(*, brand, persona_id):
    """The brand's persona, or Http404 (also for another brand's persona)."""
    persona = personas_for_brand(brand=brand).filter(pk=persona_id).first()
    if persona is None:
        raise Http404("No such persona")
    return persona


def persona_versions(*, brand, persona, limit=50):
    return list(PersonaVersion.objects.for_brand(brand).filter(persona=persona).select_related("created_by")[:limit])


def persona_version_get(*, brand, persona, version_id):
    version = PersonaVersion.objects.for_brand(brand).filter(persona=persona, pk=version_id).first()
    if version is None:
        raise Http404("No such version")
    return version


def persona_versions_of_brand(*, brand):
    return PersonaVersion.objects.for_brand(brand).select_related("persona").order_by("persona__name", "-number")


def library_items_for_brand(*, brand, model=None):
    items = LibraryItem.objects.for_brand(brand).select_related("model", "direction")
    return items if model is None else items.filter(model=model)


def persona_reference_version(*, brand, persona):
    """The version whose render an asset's identity consistency is scored
    against: the persona's first, the face the brand chose."""
    return PersonaVersion.objects.for_brand(brand).filter(persona=persona).order_by("number").first()


def persona_current_versions(*, brand):
    """The current version of each of the brand's personas not archived, by persona name."""
    current = Persona.objects.for_brand(brand).filter(archived_at__isnull=True).values("current_version")
    return persona_versions_of_brand(brand=brand).filter(pk__in=current).select_related("persona__model")


def personas_gallery(*, brand, query="", archived=False):
    """The brand's personas for the gallery, by name: those whose name or handle
    contains `query` (any case; a leading @ is ignored), not archived ones unless
    `archived` ("only": archived ones alone)."""
    personas = personas_for_brand(brand=brand).select_related("current_version")
    query = query.strip().removeprefix("@").strip()
    if query:
        personas = personas.filter(Q(name__icontains=query) | Q(handle__icontains=query))
    if archived == "only":
        return personas.filter(archived_at__isnull=False)
    return personas if archived else personas.filter(archived_at__isnull=True)


def personas_archived_count(*, brand):
    return Persona.objects.for_brand(brand).filter(archived_at__isnull=False).count()


def persona_counts(*, brand, persona):
    """{"versions_count", "images_count"}: what deleting the persona removes."""
    from content.models import Asset

    return {
        "versions_count": PersonaVersion.objects.for_brand(brand).filter(persona=persona).count(),
        "images_count": Asset.objects.for_brand(brand).filter(persona=persona).count(),
    }
