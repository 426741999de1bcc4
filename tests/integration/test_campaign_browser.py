"""Building, running and cancelling a campaign in a real browser (Debian's Chromium,
Playwright) against a live server, with a real Celery worker on PostgreSQL and Redis.
Screenshots are saved as artifacts (tests/conftest.py: screenshot)."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.selectors import campaign_items, campaign_progress
from content.models import Asset
from generation.models import GenerationJob
from tests.conftest import log_in, screenshot
from tests.integration.conftest import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = GenerationJob.Status


@pytest.fixture(scope="module")
def worker(services, django_db_setup, tmp_path_factory):
    """This module's own worker, stopped when the module ends: the session's would
    outlive it and answer the broker pings of tests that need no worker listening."""
    media = tmp_path_factory.mktemp("campaign-media")
    with (
        override_settings(MEDIA_ROOT=media),
        celery_worker(media=media, log_path=media.parent / "campaign-worker.log", hostname="campaigns") as process,
    ):
        yield process


def build(page, live_server, brand, *, name, formats, variants):
    page.goto(live_server.url + reverse("campaign-create", args=[brand.slug]))
    page.fill("input[name=name]", name)
    page.check("input[name=versions]")
    for checkbox in page.locator("input[name=formats]").all():
        checkbox.set_checked(checkbox.get_attribute("value") in formats)
    page.fill("input[name=variants]", str(variants))


def test_it_builds_and_runs_a_campaign_with_live_progress(live_server, browser_page, worker, brand, persona):
    page = browser_page
    log_in(page, live_server, "owner")
    build(page, live_server, brand, name="Spring drop", formats={"1:1", "4:5"}, variants=2)
    # The count updates as the user picks, before anything is sent.
    assert page.locator("#live-estimate").inner_text().startswith("4 images")
    screenshot(page, "campaign-builder")

    page.click("button:has-text('Submit campaign')")
    page.wait_for_url(re.compile(r"/campaigns/\d+/$"))
    # The board fills in by itself: no reload.
    page.locator("#progress", has_text="4 / 4 done").wait_for(timeout=120_000)
    assert page.locator(".board img").count() == 4
    screenshot(page, "campaign-board")

    campaign = Campaign.objects.for_brand(brand).get()
    assert campaign_progress(brand=brand, campaign=campaign).succeeded == 4
    page.locator(".board a").first.click()
    page.wait_for_load_state()
    page.click("button:has-text('Verify')")
    page.wait_for_load_state()
    assert page.locator("#verification").inner_text().startswith("Bit-exact")
    screenshot(page, "asset-verified")


def test_it_cancels_a_running_campaign_from_the_board(live_server, browser_page, worker, brand, persona):
    page = browser_page
    log_in(page, live_server, "owner")
    build(page, live_server, brand, name="Too big", formats={"1:1", "4:5", "9:16"}, variants=16)
    page.click("button:has-text('Submit campaign')")
    page.wait_for_url(re.compile(r"/campaigns/\d+/$"))
    campaign = Campaign.objects.for_brand(brand).get()
    wait_for(lambda: campaign_progress(brand=brand, campaign=campaign).succeeded, timeout=120, what="a first image")

    page.click("button:has-text('Cancel campaign')")
    page.wait_for_load_state()
    assert "unfinished image(s); finished ones are kept" in page.locator(".message").inner_text()
    wait_for(
        lambda: not GenerationJob.objects.for_brand(brand).filter(status=Status.RUNNING).exists(),
        timeout=60,
        what="the running batch to stop",
    )
    page.reload()
    screenshot(page, "campaign-cancelled")
    progress = campaign_progress(brand=brand, campaign=campaign)
    assert progress.state == "cancelled" and progress.cancelled > 0 and progress.queued == 0
    items = campaign_items(brand=brand, campaign=campaign)
    # Cancelled items were never stored; finished ones were, once.
    stored = Asset.objects.for_brand(brand).filter(job__in=[item.job for item in items])
    assert stored.count() == progress.succeeded
    assert not stored.filter(job__status=Status.CANCELLED).exists()
