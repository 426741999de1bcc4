"""Publishing in a real browser (Debian's Chromium, Playwright) against a live
server, with a real Celery worker: an owner adds a signed-webhook channel, a
creator schedules an approved image on it, drags the post to another day on
the month view, moves it back with the form on the week view (and is told in
words why a drop into the past is refused), and the worker publishes it at its
time through the webhook connector to a local receiver that verifies the
Standard Webhooks signature. The post page then shows the publish log.

Time is publishing's clock (publishing/clock.py): an offset file shared by this
process (and so the live server) and the worker, set to a Wednesday in March
2026 so that the calendar's days are fixed."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from config.celery import app as celery_app
from publishing import clock
from publishing.models import Channel, Post, PublishAttempt
from tests.conftest import campaign_assets, log_in, screenshot
from tests.integration.conftest import celery_worker, wait_for
from tests.publishing.conftest import approve
from tests.receiver import SignedReceiver
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A Wednesday: the month view of March 2026 holds the day before and after.
START = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver():
    server = SignedReceiver(path="/posts", answer={"id": "feed-77", "url": "https://social.example/p/feed-77"})
    yield server
    server.close()


@pytest.fixture
def shared_clock(settings, tmp_path):
    settings.PUBLISHING_CLOCK_FILE = str(tmp_path / "publishing-clock")
    clock.travel_to(START)
    return settings.PUBLISHING_CLOCK_FILE


def test_it_schedules_an_approved_image_moves_it_on_the_calendar_and_publishes_it_through_a_signed_webhook(
    services,
    settings,
    tmp_path,
    media_root,
    shared_clock,
    receiver,
    live_server,
    browser_page,
    owner,
    brand,
    persona,
    creator,
    reviewer,
):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    endpoint, receiver.secret = webhook_endpoint_create(
        actor=owner, brand=brand, url=receiver.url, events=["job.failed"], description="Social feed bridge"
    )
    [asset] = campaign_assets(actor=creator, brand=brand, persona=persona, variants=1)
    approve(creator=creator, reviewer=reviewer, brand=brand, asset=asset)
    assert asset.released
    celery_app.control.purge()  # the campaign's render task: rendered here already

    page = browser_page
    # The owner adds the channel with its disclosure policy.
    log_in(page, live_server, owner.username)
    page.goto(live_server.url + reverse("channel-list", args=[brand.slug]))
    page.fill("#channel-new input[name=name]", "Feed")
    page.select_option("#channel-new select[name=kind]", "webhook")
    page.select_option("#channel-new select[name=webhook_endpoint]", str(endpoint.pk))
    page.fill("#channel-new textarea[name=caption_labels]", "AI-generated")
    page.click("#channel-new button[type=submit]")
    page.wait_for_load_state()
    assert "Added the channel Feed." in page.locator(".message").first.inner_text()
    channel = Channel.objects.for_brand(brand).get(name="Feed")
    assert channel.caption_labels == ["AI-generated"] and channel.require_c2pa
    screenshot(page, "publishing-channels")

    # The creator schedules the approved image; a caption without the label is refused first.
    page.context.clear_cookies()
    log_in(page, live_server, creator.username)
    page.goto(live_server.url + reverse("post-create", args=[brand.slug]) + f"?asset={asset.pk}")
    assert "the caption must carry “AI-generated”" in page.locator("#channel-rules").inner_text()
    page.select_option("select[name=channel]", str(channel.pk))
    page.fill("textarea[name=caption]", "Ava says hello")
    page.fill("input[name=publish_at]", "2026-03-11T09:10:00")
    page.click("#post-form button[type=submit]")
    page.wait_for_load_state()
    assert "Feed requires the caption to carry “AI-generated”." in page.locator("#post-form").inner_text()
    page.fill("textarea[name=caption]", "Ava says hello #AI-generated")
    page.fill("input[name=publish_at]", "2026-03-11T09:10:00")
    page.click("#post-form button[type=submit]")
    page.wait_for_load_state()
    post = Post.objects.for_brand(brand).get()
    assert page.url.endswith(reverse("post-detail", args=[brand.slug, post.pk]))
    assert "Scheduled on Feed for 2026-03-11 09:10." in page.locator(".message").first.inner_text()

    # Month view: drag the post to the next day; it keeps its time of day.
    page.goto(live_server.url + reverse("publishing-calendar", args=[brand.slug]))
    chip = page.locator(f"#post-{post.pk}")
    assert chip.locator("xpath=ancestor::td").get_attribute("data-date") == "2026-03-11"
    chip.drag_to(page.locator("#day-2026-03-12"))
    page.locator("#calendar-status", has_text="Moved to 2026-03-12 09:10.").wait_for()
    assert page.locator(f"#day-2026-03-12 #post-{post.pk}").count() == 1
    post.refresh_from_db()
    assert post.publish_at == datetime(2026, 3, 12, 9, 10, tzinfo=UTC)
    # A drop into the past is refused, in words, and the post stays.
    page.locator(f"#post-{post.pk}").drag_to(page.locator("#day-2026-03-10"))
    page.locator("#calendar-status.error", has_text="was not moved: Choose a time in the future.").wait_for()
    post.refresh_from_db()
    assert post.publish_at == datetime(2026, 3, 12, 9, 10, tzinfo=UTC)
    page.reload()
    assert page.locator(f"#day-2026-03-12 #post-{post.pk}").count() == 1
    screenshot(page, "publishing-calendar-month")

    # Week view: the post sits in Thursday's 09:00 slot; move it back with its form.
    page.goto(live_server.url + reverse("publishing-calendar", args=[brand.slug]) + "?view=week&date=2026-03-12")
    slot_chip = page.locator(f"#slot-2026-03-12T09 #post-{post.pk}")
    assert slot_chip.count() == 1
    slot_chip.locator("summary").click()
    slot_chip.locator("input[name=publish_at]").fill("2026-03-11T09:05:00")
    slot_chip.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert f"Moved post {post.pk} to 2026-03-11 09:05." in page.locator(".message").first.inner_text()
    assert "view=week" in page.url and page.locator(f"#slot-2026-03-11T09 #post-{post.pk}").count() == 1
    screenshot(page, "publishing-calendar-week")

    # Its time comes: the worker's tick (the same clock) publishes it through the webhook.
    env = {
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "PUBLISHING_CLOCK_FILE": shared_clock,
    }
    with celery_worker(media=media_root, log_path=tmp_path / "worker.log", hostname="publishing-browser", env=env):
        clock.travel_to(START + timedelta(minutes=5, seconds=30))

        def published():
            post.refresh_from_db()
            if post.state != Post.State.PUBLISHED:
                celery_app.send_task("publishing.tick")
            return post.state == Post.State.PUBLISHED

        wait_for(published, timeout=120, what="the post published", interval=3)

    assert receiver.unverified == []
    assert len(receiver.messages) == 1
    headers, message, _status = receiver.messages[0]
    assert headers["webhook-id"] == "post_" + post.idempotency_key.hex
    assert headers["Idempotency-Key"] == str(post.idempotency_key)
    assert message["type"] == "post.published"
    data = message["data"]
    assert (data["post_id"], data["asset_id"], data["channel"], data["caption"]) == (
        post.pk,
        asset.pk,
        "Feed",
        "Ava says hello #AI-generated",
    )
    # The approved (released) master went out: the DRAFT-free file with its own C2PA manifest.
    with asset.released_image.open("rb") as released:
        media = released.read()
    assert base64.b64decode(data["media_base64"]) == media
    assert data["content_sha256"] == hashlib.sha256(media).hexdigest()  # of the file sent
    assert (post.external_id, post.external_url) == ("feed-77", "https://social.example/p/feed-77")
    [attempt] = PublishAttempt.objects.for_brand(brand).filter(post=post)
    assert attempt.ok and attempt.status_code == 200

    page.goto(live_server.url + reverse("post-detail", args=[brand.slug, post.pk]))
    assert page.locator("#post-state").inner_text().startswith("Published")
    assert "https://social.example/p/feed-77" in page.locator("#post-state").inner_text()
    log = page.locator("#attempt-1").inner_text()
    assert "published" in log and "HTTP 200" in log
    assert page.locator("#post-move").count() == 0
    screenshot(page, "publishing-post")
    page.goto(live_server.url + reverse("publishing-calendar", args=[brand.slug]))
    assert "Published" in page.locator(f"#day-2026-03-11 #post-{post.pk}").inner_text()
