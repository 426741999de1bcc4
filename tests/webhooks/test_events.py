"""The events webhooks need and nothing emitted before: asset.created when a
render's asset is stored, job.failed when a job gives up, campaign.completed once
the last item of a campaign finishes (once, however many workers notice)."""

import socket

import pytest

from audit.models import AuditEvent
from campaigns.models import CampaignItem
from campaigns.services import campaign_cancel, campaign_completion_check, campaign_submit
from content.models import Asset
from generation.services.jobs import generation_job_claim, generation_job_fail, generation_job_run
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def hearing_all(owner, brand, allow_private):
    endpoint, _ = webhook_endpoint_create(
        actor=owner,
        brand=brand,
        url="http://127.0.0.1:9/",
        events=["asset.created", "job.failed", "campaign.completed"],
    )
    return endpoint


def delivered(event):
    return [d.payload for d in WebhookDelivery.objects.filter(event=event).order_by("pk")]


def campaign_of(owner, brand, persona, variants=2):
    campaign = campaign_submit(
        actor=owner, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=variants
    )
    return campaign, list(CampaignItem.objects.for_brand(brand).filter(campaign=campaign).order_by("pk"))


def job_fail(job_id, capture):
    job, _ = generation_job_claim(job_id=job_id, worker=f"{socket.gethostname()}:1")
    with capture(execute=True):
        generation_job_fail(job=job, attempt=job.attempts, error="The engine ran out of memory.")


def test_it_emits_asset_created_then_campaign_completed_once(
    owner, brand, persona, media_root, hearing_all, django_capture_on_commit_callbacks
):
    campaign, items = campaign_of(owner, brand, persona)
    with django_capture_on_commit_callbacks(execute=True):
        generation_job_run(job_id=items[0].job_id)  # renders its batch mate too
    created = delivered("asset.created")
    assets = [Asset.objects.for_brand(brand).get(job_id=item.job_id) for item in items]
    assert created == [
        {
            "asset_id": asset.pk,
            "persona_id": persona.pk,
            "version_id": persona.current_version.pk,
            "job_id": asset.job_id,
            "output_format": "1:1",
            "width": asset.width,
            "height": asset.height,
            "sha256": asset.sha256,
            "identity_consistency": asset.identity_consistency,
            "brand": brand.slug,
        }
        for asset in assets
    ]
    assert delivered("campaign.completed") == [
        {"campaign_id": campaign.pk, "state": "completed", "total": 2, "succeeded": 2, "failed": 0, "brand": brand.slug}
    ]
    # Noticed again (another worker, a duplicate event): told once.
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_completion_check(job_id=items[1].job_id) is None
    assert len(delivered("campaign.completed")) == 1


def test_it_emits_job_failed_and_campaign_completed_when_the_last_item_finishes(
    owner, brand, persona, media_root, hearing_all, django_capture_on_commit_callbacks
):
    campaign, items = campaign_of(owner, brand, persona)
    job_fail(items[1].job_id, django_capture_on_commit_callbacks)

    [failed] = delivered("job.failed")
    assert failed == {
        "job_id": items[1].job_id,
        "persona_id": persona.pk,
        "version_id": persona.current_version.pk,
        "status": "failed",
        "attempts": 1,
        "error": "The engine ran out of memory.",
        "brand": brand.slug,
    }
    assert delivered("campaign.completed") == []

    with django_capture_on_commit_callbacks(execute=True):
        generation_job_run(job_id=items[0].job_id)
    [completed] = delivered("campaign.completed")
    assert completed["state"] == "failed" and completed["succeeded"] == 1 and completed["failed"] == 1
    assert AuditEvent.objects.filter(action="campaign.completed", target_id=str(campaign.pk)).count() == 1


def test_it_emits_nothing_for_a_cancelled_campaign(
    owner, brand, persona, media_root, hearing_all, django_capture_on_commit_callbacks
):
    campaign, items = campaign_of(owner, brand, persona)
    with django_capture_on_commit_callbacks(execute=True):
        generation_job_run(job_id=items[0].job_id)
        campaign_cancel(actor=owner, brand=brand, campaign=campaign)
        assert campaign_completion_check(job_id=items[0].job_id) is None
    assert delivered("campaign.completed") == []
