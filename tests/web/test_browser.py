"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

import pytest
from django.urls import reverse

from avatars.services import persona_render_submit
from content.models import Asset
from generation.services.jobs import generation_job_run
from tests.conftest import log_in


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
    image = page.locator(".gallery img").first
    image.wait_for()
    natural_width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    # The persona's latest render, as its draft-marked 256 px thumbnail.
    assert natural_width == 256
    page.screenshot(path=str(tmp_path / "persona.png"))


def test_it_answers_404_to_an_outsider_in_the_browser(live_server, browser_page, outsider, rendered_persona, brand):
    page = browser_page
    log_in(page, live_server, outsider.get_username())
    response = page.goto(live_server.url + reverse("persona-detail", args=[brand.slug, rendered_persona.pk]))
    assert response.status == 404
    assert page.locator("img").count() == 0
