from dataclasses import dataclass

from .models import Direction, GenerationJob


def generation_jobs_for_persona(*, brand, persona, limit=10):
    return list(GenerationJob.objects.for_brand(brand).filter(persona=persona)[:limit])


def directions_for_brand(*, brand, model=None):
    """The model-wide directions and those the brand taught, of one model or all."""
    directions = Direction.objects.for_brand(brand).select_related("model")
    return directions if model is None else directions.filter(model=model)


@dataclass(frozen=True)
class ImageQuotaUsage:
    """A brand's images this calendar month against its monthly quota."""

    used: int
    quota: int

    @property
    def left(self):
        return max(self.quota - self.used, 0)

    @property
    def percent(self):
        return min(100, round(100 * self.used / self.quota)) if self.quota else 100


def image_quota_usage(*, brand):
    """What the quota check (services.jobs.images_quota_check) counts, read without its lock."""
    from .services.jobs import images_this_month

    return ImageQuotaUsage(used=images_this_month(brand=brand), quota=brand.monthly_image_quota)
