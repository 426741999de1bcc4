"""Posts: only approved assets go out, through a channel's connector, once,
with the channel's disclosure; retried with backoff; lapsing with their approval."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage

from approvals.models import AssetReview, ReviewState
from audit.models import AuditEvent
from publishing import clock
from publishing.connectors import CONNECTORS, Connector, PublishResult, connector_register
from publishing.models import ApprovalLapse, Post, PublishAttempt
from publishing.selectors import post_log, posts_in_range
from publishing.services import (
    channel_create,
    post_cancel,
    post_create,
    post_publish,
    post_reschedule,
    posts_lapse_sweep,
    retry_delay,
)

from .conftest import NOW

CAPTION = "Spring is here #AI-generated"
State = Post.State


def review_state(asset):
    return AssetReview.objects.unscoped().get(asset=asset).state


def schedule_post(actor, brand, asset, channel, minutes=30, caption=CAPTION):
    return post_create(
        actor=actor,
        brand=brand,
        asset=asset,
        channel=channel,
        publish_at=NOW + timedelta(minutes=minutes),
        caption=caption,
    )


def at(minutes):
    return clock.frozen(NOW + timedelta(minutes=minutes))


def test_it_schedules_an_approved_asset_and_moves_its_review_to_scheduled(
    now, creator, brand, approved, export_channel
):
    post = schedule_post(creator, brand, approved[0], export_channel)
    assert post.state == State.SCHEDULED
    assert review_state(approved[0]) == ReviewState.SCHEDULED
    assert AuditEvent.objects.filter(action="post.scheduled", actor=creator).count() == 1
    assert list(posts_in_range(brand=brand, start=NOW, end=NOW + timedelta(hours=1))) == [post]
    assert list(posts_in_range(brand=brand, start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2))) == []


def test_it_refuses_to_post_an_asset_that_is_not_approved(now, creator, brand, assets, export_channel, media_root):
    with pytest.raises(ValidationError) as refused:
        schedule_post(creator, brand, assets[2], export_channel)
    assert "never submitted for review" in refused.value.message_dict["asset"][0]
    from approvals.services import review_submit

    review_submit(actor=creator, brand=brand, asset=assets[2])
    with pytest.raises(ValidationError) as refused:
        schedule_post(creator, brand, assets[2], export_channel)
    assert "in review, not approved" in refused.value.message_dict["asset"][0]
    assert not Post.objects.unscoped().exists()


def test_it_lets_creators_and_owners_post_but_not_reviewers_or_viewers(
    now, owner, reviewer, viewer, brand, approved, export_channel
):
    for user in (reviewer, viewer):
        with pytest.raises(PermissionDenied):
            schedule_post(user, brand, approved[0], export_channel)
    assert schedule_post(owner, brand, approved[0], export_channel).state == State.SCHEDULED


def test_it_refuses_a_time_in_the_past_and_a_second_live_post_on_a_channel(
    now, creator, brand, approved, export_channel
):
    with pytest.raises(ValidationError) as refused:
        schedule_post(creator, brand, approved[0], export_channel, minutes=-1)
    assert "publish_at" in refused.value.message_dict
    schedule_post(creator, brand, approved[0], export_channel)
    with pytest.raises(ValidationError) as refused:
        schedule_post(creator, brand, approved[0], export_channel, minutes=60)
    assert "already waiting" in refused.value.message_dict["channel"][0]


def test_it_refuses_a_caption_without_the_channels_label(now, creator, brand, approved, export_channel):
    with pytest.raises(ValidationError) as refused:
        schedule_post(creator, brand, approved[0], export_channel, caption="Spring is here")
    assert "“AI-generated”" in refused.value.message_dict["caption"][0]


def test_it_blocks_publishing_with_a_visible_reason_when_the_file_lacks_what_the_channel_requires(
    now, owner, creator, brand, approved, export_channel
):
    post = schedule_post(creator, brand, approved[0], export_channel)
    # The released master is replaced by one without its C2PA manifest and XMP.
    asset = approved[0]
    with default_storage.open(asset.released_image.name, "rb") as stored:
        png = stored.read()
    import io

    from PIL import Image

    plain = io.BytesIO()
    Image.open(io.BytesIO(png)).save(plain, format="PNG")
    default_storage.delete(asset.released_image.name)
    default_storage.save(asset.released_image.name, io.BytesIO(plain.getvalue()))
    with at(31):
        assert post_publish(post_id=post.pk) == State.FAILED
    post.refresh_from_db()
    assert "C2PA manifest" in post.blocked_reason and "trainedAlgorithmicMedia" in post.blocked_reason
    assert review_state(asset) == ReviewState.SCHEDULED
    [attempt] = post_log(brand=brand, post=post)
    assert not attempt.ok and not attempt.retryable
    assert not default_storage.listdir("exports/feed")[1] if default_storage.exists("exports/feed") else True


def test_it_publishes_through_the_export_connector_once_with_caption_and_file(
    now, creator, brand, approved, export_channel, memory_broker
):
    post = schedule_post(creator, brand, approved[0], export_channel)
    with at(10):
        assert post_publish(post_id=post.pk) is None  # not due yet
    with at(31):
        assert post_publish(post_id=post.pk) == State.PUBLISHED
        assert post_publish(post_id=post.pk) is None  # a second delivery of the task does nothing
    post.refresh_from_db()
    assert (post.state, post.attempts, post.published_at) == (State.PUBLISHED, 1, NOW + timedelta(minutes=31))
    assert review_state(approved[0]) == ReviewState.PUBLISHED
    document = json.loads(default_storage.open(post.external_id).read())
    assert document["caption"] == CAPTION and document["idempotency_key"] == str(post.idempotency_key)
    image = default_storage.open(post.external_id.replace(".json", ".png")).read()
    assert document["sha256"] == __import__("hashlib").sha256(image).hexdigest()
    with default_storage.open(approved[0].released_image.name, "rb") as released:
        assert image == released.read()
    assert AuditEvent.objects.filter(action="post.published").count() == 1


class FlakyNetwork:
    """A test double of a network's API: refuses the first `failures` calls with
    503, then publishes, answering the same media id for a repeated client key."""

    def __init__(self, failures=0):
        self.failures, self.calls, self.media = failures, 0, {}

    def publish(self, *, client_key, image, caption):
        self.calls += 1
        if self.calls <= self.failures:
            return 503, {"error": "try later"}
        media_id = self.media.setdefault(client_key, f"m{len(self.media) + 1}")
        return 200, {"id": media_id, "permalink": f"https://photos.example/p/{media_id}"}


@pytest.fixture
def network():
    api = FlakyNetwork(failures=2)

    @connector_register
    class PhotoNetworkConnector(Connector):
        """An Instagram-like network: one call with the image, caption and our idempotency key."""

        kind = "photo-network-test"

        def publish(self, request):
            status, answer = api.publish(
                client_key=request.idempotency_key, image=request.media, caption=request.caption
            )
            if status != 200:
                return PublishResult(ok=False, retryable=status >= 500, status_code=status, response=json.dumps(answer))
            return PublishResult(
                ok=True,
                status_code=status,
                response=json.dumps(answer),
                external_id=answer["id"],
                external_url=answer["permalink"],
            )

    yield api
    del CONNECTORS["photo-network-test"]


def test_it_retries_a_failing_network_with_backoff_and_logs_each_answer(
    now, owner, creator, brand, approved, network, memory_broker, settings
):
    channel = channel_create(actor=owner, brand=brand, name="Photos", kind="photo-network-test", caption_labels=[])
    post = schedule_post(creator, brand, approved[0], channel)
    assert post_publish(post_id=post.pk) is None
    with at(30):
        assert post_publish(post_id=post.pk) == State.SCHEDULED
    post.refresh_from_db()
    assert post.next_attempt_at == NOW + timedelta(minutes=30, seconds=retry_delay(1))
    assert retry_delay(1) == 30 and retry_delay(2) == 120
    with at(30.25):
        assert post_publish(post_id=post.pk) is None  # backing off
    with at(30.5):
        assert post_publish(post_id=post.pk) == State.SCHEDULED
    with at(33):
        assert post_publish(post_id=post.pk) == State.PUBLISHED
    post.refresh_from_db()
    assert (post.external_id, post.external_url) == ("m1", "https://photos.example/p/m1")
    log = list(post_log(brand=brand, post=post))
    assert [(a.number, a.ok, a.status_code) for a in log] == [(1, False, 503), (2, False, 503), (3, True, 200)]
    assert "try later" in log[0].response
    assert memory_broker.sent("default")[:1] == [("publishing.publish", [post.pk])]


def test_it_fails_a_post_after_the_attempts_allowed(now, owner, creator, brand, approved, network, settings):
    settings.PUBLISHING_MAX_ATTEMPTS = 2
    network.failures = 99
    channel = channel_create(actor=owner, brand=brand, name="Photos", kind="photo-network-test")
    post = schedule_post(creator, brand, approved[0], channel)
    with at(30):
        assert post_publish(post_id=post.pk) == State.SCHEDULED
    with at(31):
        assert post_publish(post_id=post.pk) == State.FAILED
    post.refresh_from_db()
    assert post.last_error and post.next_attempt_at is None


def test_it_publishes_once_when_a_worker_is_lost_after_the_channel_accepted(
    now, owner, creator, brand, approved, network
):
    network.failures = 0
    channel = channel_create(actor=owner, brand=brand, name="Photos", kind="photo-network-test")
    post = schedule_post(creator, brand, approved[0], channel)
    # An attempt whose worker died: claimed (publishing, leased), never finished.
    Post.objects.unscoped().filter(pk=post.pk).update(
        state=State.PUBLISHING, attempts=1, locked_until=NOW + timedelta(minutes=32)
    )
    network.publish(client_key=str(post.idempotency_key), image=b"", caption=CAPTION)
    with at(31):
        assert post_publish(post_id=post.pk) is None  # still held
    with at(33):
        assert post_publish(post_id=post.pk) == State.PUBLISHED
    post.refresh_from_db()
    assert post.external_id == "m1" and len(network.media) == 1


def test_it_moves_and_cancels_a_post(now, creator, brand, approved, export_channel):
    post = schedule_post(creator, brand, approved[0], export_channel)
    moved = post_reschedule(actor=creator, brand=brand, post=post, publish_at=NOW + timedelta(days=2))
    assert moved.publish_at == NOW + timedelta(days=2)
    post_cancel(actor=creator, brand=brand, post=moved)
    assert review_state(approved[0]) == ReviewState.APPROVED
    with pytest.raises(ValidationError):
        post_reschedule(actor=creator, brand=brand, post=moved, publish_at=NOW + timedelta(days=3))


def test_it_lapses_an_unpublished_post_and_its_approval_and_then_refuses_the_asset(
    now, creator, brand, approved, export_channel, settings, django_capture_on_commit_callbacks
):
    post = schedule_post(creator, brand, approved[0], export_channel)
    with at(30 + 59):
        assert posts_lapse_sweep() == 0
    with at(30 + 61), django_capture_on_commit_callbacks(execute=True):
        assert posts_lapse_sweep() == 1
    post.refresh_from_db()
    assert post.state == State.LAPSED and "passed unpublished" in post.blocked_reason
    approved[0].refresh_from_db()
    assert not approved[0].released
    assert ApprovalLapse.objects.unscoped().filter(asset=approved[0]).exists()
    with at(30 + 62):
        with pytest.raises(ValidationError) as refused:
            schedule_post(creator, brand, approved[0], export_channel, minutes=200)
        assert "approval lapsed" in refused.value.message_dict["asset"][0]
        assert post_publish(post_id=post.pk) is None


def test_it_lapses_a_post_dragged_after_its_time_passed(now, creator, brand, approved, export_channel):
    post = schedule_post(creator, brand, approved[0], export_channel)
    with at(30 + 120):
        with pytest.raises(ValidationError) as refused:
            post_reschedule(actor=creator, brand=brand, post=post, publish_at=NOW + timedelta(days=1))
    assert "lapsed" in refused.value.message_dict["publish_at"][0]
    post.refresh_from_db()
    assert post.state == State.LAPSED


def test_it_lapses_a_due_post_a_worker_reaches_too_late(now, creator, brand, approved, export_channel):
    post = schedule_post(creator, brand, approved[0], export_channel)
    with at(30 + 61):
        assert post_publish(post_id=post.pk) == State.LAPSED
    assert not PublishAttempt.objects.unscoped().filter(post=post).exists()
