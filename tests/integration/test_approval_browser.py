"""The approval workflow in a real browser (Debian's Chromium, Playwright) against
a live server, with a real Celery worker rendering the campaign: a creator runs a
campaign and submits it, cannot approve their own images, and a reviewer approves
some from the keyboard and the bulk bar and rejects one with a reason. The
approved images are then served without the DRAFT mark."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from approvals.models import AssetReview, ReviewDecision, ReviewState
from content.models import Asset
from tests.conftest import log_in, screenshot
from tests.integration.conftest import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(services, django_db_setup, tmp_path_factory):
    media = tmp_path_factory.mktemp("approval-media")
    with (
        override_settings(MEDIA_ROOT=media),
        celery_worker(media=media, log_path=media.parent / "approval-worker.log", hostname="approvals") as process,
    ):
        yield process


def test_a_reviewer_approves_some_and_rejects_one_and_the_creator_cannot_approve_their_own(
    live_server, browser_page, worker, brand, persona, creator, reviewer
):
    page = browser_page
    log_in(page, live_server, creator.username)
    page.goto(live_server.url + reverse("campaign-create", args=[brand.slug]))
    page.fill("input[name=name]", "Autumn")
    page.check("input[name=versions]")
    for checkbox in page.locator("input[name=formats]").all():
        checkbox.set_checked(checkbox.get_attribute("value") == "1:1")
    page.fill("input[name=variants]", "3")
    page.click("button:has-text('Submit campaign')")
    page.wait_for_url(re.compile(r"/campaigns/\d+/$"))
    page.locator("#progress", has_text="3 / 3 done").wait_for(timeout=120_000)

    page.reload()
    page.click("button:has-text('Submit 3 finished images for review')")
    page.wait_for_load_state()
    assert "Submitted for review: 3 images." in page.locator(".message").first.inner_text()

    # The creator sees the queue, but no way to approve their own images.
    page.goto(live_server.url + reverse("approval-queue", args=[brand.slug]))
    assert page.locator(".queue-item").count() == 3
    assert page.locator(".queue-item button[value=approve]").count() == 0
    assert page.locator(".queue-item", has_text="You made this image").count() == 3
    screenshot(page, "approval-queue-creator")

    page.context.clear_cookies()
    log_in(page, live_server, reviewer.username)
    page.goto(live_server.url + reverse("approval-queue", args=[brand.slug]))
    ids = [int(item.get_attribute("data-asset")) for item in page.locator(".queue-item").all()]
    assert len(ids) == 3
    # Keyboard: focus the first image, select it and the next (x, j, x), approve the selection.
    page.locator(".queue-item").first.focus()
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    screenshot(page, "approval-queue-selected")
    page.click("fieldset.bulk button[value=approve]")
    page.wait_for_load_state()
    assert "Approved 2 images." in page.locator(".message").first.inner_text()

    # The last one: r selects it and moves to the reason; reject with a reason.
    page.locator(".queue-item").first.focus()
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reason-code"
    page.select_option("#reason-code", "artefact")
    page.fill("#reason-text", "Smudge on the collar")
    page.click("#reject")
    page.wait_for_load_state()
    assert "Rejected 1 image." in page.locator(".message").first.inner_text()
    assert page.locator(".queue-item").count() == 0

    states = {review.asset_id: review.state for review in AssetReview.objects.for_brand(brand)}
    assert states == {ids[0]: ReviewState.APPROVED, ids[1]: ReviewState.APPROVED, ids[2]: ReviewState.REJECTED}
    rejection = ReviewDecision.objects.for_brand(brand).get(action="reject")
    assert (rejection.actor, rejection.reason_code, rejection.reason_text) == (
        reviewer,
        "artefact",
        "Smudge on the collar",
    )
    # Approved images are released (after commit, in the web process) without the mark.
    wait_for(
        lambda: Asset.objects.for_brand(brand).filter(pk__in=ids[:2], released_at__isnull=False).count() == 2,
        timeout=30,
        what="the approved files",
    )
    page.goto(live_server.url + reverse("asset-detail", args=[brand.slug, ids[0]]))
    assert page.locator("#release").inner_text().startswith("Approved")
    assert "ana approved" in page.locator("#review").inner_text()
    screenshot(page, "asset-approved")
    page.goto(live_server.url + reverse("asset-detail", args=[brand.slug, ids[2]]))
    assert page.locator("#release").inner_text().startswith("Draft")
    assert "Visual artefact: “Smudge on the collar”" in page.locator("#review").inner_text()
    screenshot(page, "asset-rejected")
