"""The campaign board's live progress with htmx, and htmx itself served from the
installed package (no CDN)."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from campaigns.selectors import campaign_items
from campaigns.services import campaign_submit
from generation.services.jobs import generation_job_run
from tests.web.test_pages import login

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign(owner, brand, persona, media_root):
    return campaign_submit(
        actor=owner, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=2
    )


def test_the_board_polls_with_htmx_until_the_campaign_is_finished(client, member, brand, campaign):
    login(client, member)
    detail = reverse("campaign-detail", args=[brand.slug, campaign.pk])
    page = client.get(detail).content.decode()
    assert f'hx-get="{detail}?fragment=1" hx-trigger="every 2s"' in page
    assert "campaign_board.js" not in page

    running = client.get(detail, {"fragment": 1}, **HTMX)
    assert running.status_code == 200 and "0 / 2 done" in running.content.decode()
    assert "<html" not in running.content.decode()

    for item in campaign_items(brand=brand, campaign=campaign):
        generation_job_run(job_id=item.job_id)
    # 286: htmx swaps the last board in and stops polling.
    finished = client.get(detail, {"fragment": 1}, **HTMX)
    assert finished.status_code == 286 and "2 / 2 done" in finished.content.decode()
    assert finished.content.decode().count('<img src="/brands/acme/assets/') == 2
    assert "hx-trigger" not in client.get(detail).content.decode()


def test_outsiders_get_404_from_the_boards_fragment(client, outsider, other_brand, brand, campaign):
    login(client, outsider)
    detail = reverse("campaign-detail", args=[brand.slug, campaign.pk])
    assert client.get(detail, {"fragment": 1}, **HTMX).status_code == 404


def test_htmx_is_served_from_the_installed_package_and_no_script_comes_from_elsewhere(client, member, brand):
    login(client, member)
    page = client.get(reverse("brand-dashboard", args=[brand.slug])).content.decode()
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert "/static/django_htmx/htmx-2.min.js" in sources
    assert all(source.startswith("/static/") for source in sources), sources
    assert finders.find("django_htmx/htmx-2.min.js") and finders.find("js/htmx_errors.js")
    # Forms' own errors (400, 409, 422) are swapped in place; CSRF rides on every htmx request.
    assert "^(400|409|422)$" in page and 'hx-headers=\'{"X-CSRFToken": "' in page
