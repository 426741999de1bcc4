"""A post published by a real worker on beat's tick, under a moved clock, to a
local receiver verifying each Standard Webhooks signature: refused once, retried
with backoff under the same webhook-id, published once; two ticks racing for
one due post make one attempt each time."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from config.celery import app as celery_app
from publishing import clock
from publishing.models import Post, PublishAttempt
from publishing.services import channel_create, post_create, post_publish
from tests.integration.conftest import celery_worker, wait_for
from tests.integration.test_publishing_schedules import celery_beat
from tests.publishing.conftest import approve
from tests.receiver import SignedReceiver
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    server = SignedReceiver(path="/posts", statuses=[503], answer={"id": "feed-1", "url": "https://feed.example/p/1"})
    yield server
    server.close()


@pytest.fixture
def channel(settings, owner, brand, receiver):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    endpoint, receiver.secret = webhook_endpoint_create(
        actor=owner, brand=brand, url=receiver.url, events=["asset.approved"]
    )
    return channel_create(
        actor=owner,
        brand=brand,
        name="Feed",
        kind="webhook",
        webhook_endpoint=endpoint,
        caption_labels=["AI-generated"],
    )


def test_it_publishes_a_post_once_from_beat_and_a_real_worker(
    services, settings, tmp_path, creator, reviewer, brand, assets, channel, receiver
):
    clock_file = tmp_path / "clock"
    settings.PUBLISHING_CLOCK_FILE = str(clock_file)
    asset = approve(creator=creator, reviewer=reviewer, brand=brand, asset=assets[0])
    post = post_create(
        actor=creator,
        brand=brand,
        asset=asset,
        channel=channel,
        publish_at=clock.now() + timedelta(hours=2),
        caption="Ava by the sea (AI-generated)",
    )
    celery_app.control.purge()
    env = {
        "PUBLISHING_CLOCK_FILE": str(clock_file),
        "PUBLISHING_TICK_SECONDS": "1",
        "PUBLISHING_RETRY_BASE_SECONDS": "1",
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    }
    with (
        celery_worker(media=settings.MEDIA_ROOT, log_path=tmp_path / "worker.log", hostname="posts", env=env),
        celery_beat(log_path=tmp_path / "beat.log", schedule_path=tmp_path / "beat", env=env),
    ):
        clock.travel_to(post.publish_at + timedelta(seconds=2))
        wait_for(
            lambda: Post.objects.unscoped().get(pk=post.pk).state == Post.State.PUBLISHED,
            timeout=60,
            what="the post published",
        )
    assert receiver.unverified == []
    assert [status for _headers, _message, status in receiver.messages] == [503, 200]
    assert {headers["webhook-id"] for headers, _m, _s in receiver.messages} == {"post_" + post.idempotency_key.hex}
    post.refresh_from_db()
    assert (post.attempts, post.external_id) == (2, "feed-1")


def test_it_lets_one_of_two_racing_workers_attempt_a_due_post(
    services, settings, creator, reviewer, brand, assets, channel, receiver, memory_broker
):
    receiver.statuses = []
    asset = approve(creator=creator, reviewer=reviewer, brand=brand, asset=assets[0])
    post = post_create(
        actor=creator,
        brand=brand,
        asset=asset,
        channel=channel,
        publish_at=clock.now() + timedelta(minutes=1),
        caption="AI-generated",
    )
    barrier, outcomes = threading.Barrier(4), []

    def attempt():
        barrier.wait()
        with clock.frozen(post.publish_at + timedelta(seconds=1)):
            outcomes.append(post_publish(post_id=post.pk))
        connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [None, None, None, Post.State.PUBLISHED]
    assert len(receiver.messages) == 1
    assert PublishAttempt.objects.unscoped().filter(post=post).count() == 1
