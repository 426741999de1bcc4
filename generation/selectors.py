from .models import Direction, GenerationJob


def generation_jobs_for_persona(*, brand, persona, limit=10):
    return list(GenerationJob.objects.for_brand(brand).filter(persona=persona)[:limit])


def directions_for_brand(*, brand, model=None):
    """The model-wide directions and those the brand taught, of one model or all."""
    directions = Direction.objects.for_brand(brand).select_related("model")
    return directions if model is None else directions.filter(model=model)
