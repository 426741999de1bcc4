"""Live progress in a real browser (Debian's Chromium, Playwright) against a live
server with a real Celery worker on PostgreSQL and Redis: a render queued from the
persona page goes queued -> running -> done and its image appears by itself, with
no reload; the slider and the look tiles preview in place. Screenshots are saved
as artifacts (tests/conftest.py: screenshot)."""

import pytest
from django.test import override_settings
from django.urls import reverse

from avatars.services import library_item_create
from generation.models import GenerationJob
from generation.services.directions import directions_compute
from tests.conftest import log_in, screenshot
from tests.integration.conftest import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Every job status the page shows, as the browser saw it change (a MutationObserver).
WATCH_STATUSES = """() => {
  window.__pageLoads = (window.__pageLoads || 0) + 1;
  window.__statuses = [];
  const seen = () => document.querySelectorAll("#live tr[data-job] td[class^=status-]").forEach(cell => {
    const text = cell.firstChild.textContent.trim();
    if (window.__statuses[window.__statuses.length - 1] !== text) window.__statuses.push(text);
  });
  seen();
  new MutationObserver(seen).observe(document.body, {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def worker(services, django_db_setup, tmp_path_factory):
    """This module's own worker, stopped when the module ends."""
    media = tmp_path_factory.mktemp("live-media")
    with (
        override_settings(MEDIA_ROOT=media),
        celery_worker(media=media, log_path=media.parent / "live-worker.log", hostname="live") as process,
    ):
        yield process


def test_a_render_queued_from_the_persona_page_appears_by_itself(live_server, browser_page, worker, brand, persona):
    page = browser_page
    log_in(page, live_server, "owner")
    page.goto(live_server.url + reverse("persona-detail", args=[brand.slug, persona.pk]))
    assert page.locator("#live").inner_text().count("No images yet") == 1
    page.evaluate(WATCH_STATUSES)

    page.click("button:has-text('Render')")
    # The image appears in the page as it is: no reload, no navigation.
    page.locator("#live .gallery img").wait_for(timeout=120_000)
    page.locator("#live td.status-succeeded").wait_for(timeout=30_000)
    assert page.evaluate("window.__pageLoads") == 1
    statuses = page.evaluate("window.__statuses")
    assert statuses[-1] == "Succeeded" and statuses[0] in ("Queued", "Running"), statuses
    assert page.locator("#live .gallery img").evaluate("img => img.complete && img.naturalWidth") > 0
    assert (
        "same person" in page.locator("#live .badge").inner_text()
        or "identity" in page.locator("#live .badge").inner_text()
    )
    # Done: it stopped asking.
    assert page.locator("#live").get_attribute("hx-trigger") is None
    job = GenerationJob.objects.for_brand(brand).get()
    assert job.status == GenerationJob.Status.SUCCEEDED
    screenshot(page, "persona-live-render")


def test_the_slider_and_the_look_tiles_preview_in_place(live_server, browser_page, worker, owner, brand, persona):
    directions_compute(model_id=persona.model_id)
    library_item_create(
        actor=owner, brand=brand, model=persona.model, kind="look", name="Gala", layer_group="fine", seed=5
    )
    page = browser_page
    log_in(page, live_server, "owner")
    page.goto(live_server.url + reverse("persona-detail", args=[brand.slug, persona.pk]))
    page.evaluate("window.__marker = 'same page'")

    # The strip of what the chosen direction does is a real picture.
    strip = page.locator("#direction-panel .strip img")
    strip.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=strip.element_handle())
    # Moving the slider asks the server for a preview (debounced) and shows it in place.
    slider = page.locator("#id_strength")
    slider.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    page.locator("#edit-preview .preview-pair img").nth(1).wait_for(timeout=30_000)
    assert "nothing is saved yet" in page.locator("#edit-preview").inner_text()
    assert float(page.locator("#strength-value").inner_text()) > 0

    # Choosing another direction swaps in its own slider and strip.
    options = page.locator("#id_direction option")
    second = options.nth(1).get_attribute("value")
    page.select_option("#id_direction", second)
    page.wait_for_function(
        "id => document.querySelector('#direction-panel .strip img').src.includes('/directions/' + id + '/')",
        arg=second,
    )
    assert page.locator("#edit-preview img").count() == 0

    # A look tile shows the persona wearing it; choosing it previews it in place.
    tile = page.locator("label.tile:has-text('Gala') img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=tile.element_handle())
    page.locator("label.tile:has-text('Gala')").click()
    page.locator("#apply-preview .preview-pair img").nth(1).wait_for(timeout=30_000)
    assert page.evaluate("window.__marker") == "same page"
    screenshot(page, "persona-live-previews")
