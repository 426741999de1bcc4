"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

import os
import shutil

import pytest
from django.urls import reverse

from avatars.services import persona_render_submit
from content.models import Asset
from generation.services.jobs import generation_job_run
from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(tmp_path):
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the
    # test itself happen before and after, never concurrently.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def log_in(page, live_server, username):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def rendered_persona(owner, brand, persona, media_root):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    generation_job_run(job_id=job.pk)
    assert Asset.objects.for_brand(brand).filter(job=job).exists()
    return persona


def test_it_shows_a_member_the_rendered_persona(live_server, browser_page, brand, rendered_persona, tmp_path):
    page = browser_page
    log_in(page, live_server, "owner")
    page.goto(live_server.url + reverse("brand-dashboard", args=[brand.slug]))
    page.click(f"text={rendered_persona.name}")
    page.wait_for_load_state()
    image = page.locator("img").first
    image.wait_for()
    natural_width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert natural_width == 64
    page.screenshot(path=str(tmp_path / "persona.png"))


def test_it_answers_404_to_an_outsider_in_the_browser(live_server, browser_page, outsider, rendered_persona, brand):
    page = browser_page
    log_in(page, live_server, outsider.get_username())
    response = page.goto(live_server.url + reverse("persona-detail", args=[brand.slug, rendered_persona.pk]))
    assert response.status == 404
    assert page.locator("img").count() == 0
