"""The signed webhook connector against a local receiver that verifies the
Standard Webhooks signature; the channel settings each connector accepts."""

import base64
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from publishing import clock
from publishing.models import Post
from publishing.selectors import post_log
from publishing.services import channel_create, post_create, post_publish
from tests.receiver import SignedReceiver
from webhooks.services import webhook_endpoint_create

from .conftest import NOW

State = Post.State


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    server = SignedReceiver(path="/posts", statuses=[503], answer={"id": "feed-1", "url": "https://feed.example/p/1"})
    yield server
    server.close()


@pytest.fixture
def webhook_channel(owner, brand, receiver):
    endpoint, receiver.secret = webhook_endpoint_create(
        actor=owner, brand=brand, url=receiver.url, events=["asset.approved"]
    )
    return channel_create(
        actor=owner,
        brand=brand,
        name="Feed bridge",
        kind="webhook",
        webhook_endpoint=endpoint,
        caption_labels=["AI-generated", "#virtualinfluencer"],
    )


def test_it_posts_a_signed_post_published_message_retrying_with_the_same_id(
    now, creator, brand, approved, webhook_channel, receiver
):
    asset = approved[0]
    post = post_create(
        actor=creator,
        brand=brand,
        asset=asset,
        channel=webhook_channel,
        publish_at=NOW + timedelta(minutes=5),
        caption="Hello from Ava #virtualinfluencer (AI-generated)",
    )
    with clock.frozen(NOW + timedelta(minutes=5)):
        assert post_publish(post_id=post.pk) == State.SCHEDULED
    with clock.frozen(NOW + timedelta(minutes=6)):
        assert post_publish(post_id=post.pk) == State.PUBLISHED
    assert receiver.unverified == []
    (first_headers, first, first_status), (headers, message, status) = receiver.messages
    assert (first_status, status) == (503, 200)
    message_id = "post_" + post.idempotency_key.hex
    assert first_headers["webhook-id"] == headers["webhook-id"] == message_id
    assert headers["Idempotency-Key"] == str(post.idempotency_key)
    assert message["type"] == "post.published"
    data = message["data"]
    assert (data["post_id"], data["asset_id"], data["brand"], data["persona"]) == (post.pk, asset.pk, "acme", "ava")
    assert data["caption"] == post.caption
    with asset.released_image.open("rb") as released:
        assert base64.b64decode(data["media_base64"]) == released.read()
    post.refresh_from_db()
    assert (post.external_id, post.external_url) == ("feed-1", "https://feed.example/p/1")
    assert [(a.status_code, a.ok) for a in post_log(brand=brand, post=post)] == [(503, False), (200, True)]


def test_it_does_not_retry_a_refused_request(now, creator, brand, approved, webhook_channel, receiver):
    receiver.statuses = [422]
    post = post_create(
        actor=creator,
        brand=brand,
        asset=approved[0],
        channel=webhook_channel,
        publish_at=NOW + timedelta(minutes=5),
        caption="AI-generated #virtualinfluencer",
    )
    with clock.frozen(NOW + timedelta(minutes=5)):
        assert post_publish(post_id=post.pk) == State.FAILED
    post.refresh_from_db()
    assert post.last_error == "The endpoint answered HTTP 422."


def test_it_checks_each_kinds_settings(owner, brand, other_brand, outsider, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(ValidationError) as refused:
        channel_create(actor=owner, brand=brand, name="Hook", kind="webhook")
    assert "webhook_endpoint" in refused.value.message_dict
    foreign, _secret = webhook_endpoint_create(
        actor=outsider, brand=other_brand, url="http://127.0.0.1:9/x", events=["asset.approved"]
    )
    with pytest.raises(ValidationError) as refused:
        channel_create(actor=owner, brand=brand, name="Hook", kind="webhook", webhook_endpoint=foreign)
    assert "not one of this brand's" in refused.value.message_dict["webhook_endpoint"][0]
    for prefix in ("../up", "a b", "a//b"):
        with pytest.raises(ValidationError):
            channel_create(actor=owner, brand=brand, name="Out", kind="export", config={"prefix": prefix})
    with pytest.raises(ValidationError) as refused:
        channel_create(actor=owner, brand=brand, name="Gram", kind="instagram")
    assert "Unknown channel kind" in refused.value.message_dict["kind"][0]
