from .models import GenerationJob


def generation_jobs_for_persona(*, brand, persona, limit=10):
    return list(GenerationJob.objects.for_brand(brand).filter(persona=persona)[:limit])


def directions_for_model(*, model):
    return model.directions.all()
