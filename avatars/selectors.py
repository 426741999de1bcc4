from django.http import Http404

from .models import Persona


def personas_for_brand(*, brand):
    return Persona.objects.for_brand(brand).select_related("model")


def persona_get(*, brand, persona_id):
    """The brand's persona, or Http404 (also for another brand's persona)."""
    persona = personas_for_brand(brand=brand).filter(pk=persona_id).first()
    if persona is None:
        raise Http404("No such persona")
    return persona
