"""Webhooks end to end: a campaign rendered by a real `celery worker` (on
PostgreSQL and Redis) emits asset.created and campaign.completed; the worker
delivers them to a local HTTP receiver that verifies every signature with the
standardwebhooks package and refuses the first two requests, so deliveries are
retried with backoff (1 s, 4 s here) until they arrive, each message once."""

import pytest

from campaigns.services import campaign_submit
from config.celery import app as celery_app
from tests.integration.conftest import celery_worker, wait_for
from tests.receiver import SignedReceiver
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = WebhookDelivery.Status


@pytest.fixture
def receiver():
    server = SignedReceiver(statuses=[500, 500], status=204)
    yield server
    server.close()


def test_it_delivers_signed_events_from_a_real_worker_retrying_after_failures(
    services, settings, tmp_path, owner, brand, persona, receiver
):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.MEDIA_ROOT = tmp_path / "media"
    celery_app.control.purge()
    endpoint, receiver.secret = webhook_endpoint_create(
        actor=owner, brand=brand, url=receiver.url, events=["asset.created", "campaign.completed", "job.failed"]
    )
    env = {"WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOKS_RETRY_BASE_SECONDS": "1"}
    with celery_worker(media=settings.MEDIA_ROOT, log_path=tmp_path / "worker.log", hostname="webhooks", env=env):
        campaign = campaign_submit(
            actor=owner, brand=brand, name="Hooks", versions=[persona.current_version], formats=["1:1"], variants=1
        )

        def all_delivered():
            deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint))
            return len(deliveries) == 2 and all(d.status == Status.DELIVERED for d in deliveries) and deliveries

        deliveries = wait_for(all_delivered, timeout=180, what="both webhooks delivered")

    assert receiver.unverified == []
    assert [status for _, _, status in receiver.messages].count(500) == 2
    by_event = {d.event: d for d in deliveries}
    assert set(by_event) == {"asset.created", "campaign.completed"}
    assert sum(d.attempts for d in deliveries) == 4
    # Each message arrived once, under its delivery's webhook-id, with its payload.
    accepted = receiver.accepted
    assert sorted(headers["webhook-id"] for headers, _ in accepted) == sorted(d.message_id for d in deliveries)
    bodies = {message["type"]: message for _, message in accepted}
    assert bodies["campaign.completed"]["data"] == {
        "campaign_id": campaign.pk,
        "state": "completed",
        "total": 1,
        "succeeded": 1,
        "failed": 0,
        "brand": brand.slug,
    }
    assert bodies["asset.created"]["data"]["asset_id"] == by_event["asset.created"].payload["asset_id"]
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 0
