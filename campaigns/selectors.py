from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import Http404

from generation.models import GenerationJob, WorkerThroughput

from .models import Campaign, CampaignItem

Status = GenerationJob.Status


def campaigns_for_brand(*, brand):
    return Campaign.objects.for_brand(brand)


def campaign_get(*, brand, campaign_id):
    campaign = Campaign.objects.for_brand(brand).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def campaign_items(*, brand, campaign):
    return list(
        CampaignItem.objects.for_brand(brand)
        .filter(campaign=campaign)
        .select_related("job", "job__asset", "version__persona", "look", "pose")
        .order_by("pk")
    )


def campaign_item_get(*, brand, campaign, item_id):
    item = CampaignItem.objects.for_brand(brand).filter(campaign=campaign, pk=item_id).select_related("job").first()
    if item is None:
        raise Http404("No such campaign item")
    return item


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int

    @property
    def done(self):
        return self.succeeded + self.failed + self.cancelled

    @property
    def finished(self):
        return self.done == self.total

    @property
    def state(self):
        if not self.finished:
            return "running" if self.running or self.done else "queued"
        if self.cancelled:
            return "cancelled"
        return "failed" if self.failed else "completed"


def campaign_progress(*, brand, campaign):
    counts = (
        CampaignItem.objects.for_brand(brand)
        .filter(campaign=campaign)
        .aggregate(
            total=Count("pk"),
            **{status: Count("pk", filter=Q(job__status=status)) for status in Status.values},
        )
    )
    return Progress(**counts)


def throughput_basis(*, model):
    """The newest throughput any worker measured for `model`, or None."""
    return WorkerThroughput.objects.filter(model=model).order_by("-measured_at").first()
