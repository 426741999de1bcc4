"""A marketer's whole journey in a real browser (Debian's Chromium, Playwright)
against a live server on PostgreSQL, with a real Celery worker rendering on the
bundled default model, saving a screenshot at each step (tests/conftest.py:
screenshot, named journey-NN-<step>):

sign in -> find a face on the candidate grid and create the persona -> preview
and apply a look, then a pose, from the library -> run a small campaign
(1 version x 2 looks x 2 poses x 1:1 x 1 variant) and watch the board fill in
-> submit it for review -> a reviewer approves in the approval queue -> add a
channel -> schedule a post of an approved image on it -> see it on the calendar.

And an outsider's session: every page of another brand answers our 404 page,
which shows nothing of that brand.

With README_SCREENSHOTS=1 (bin/readme-screenshots) the journey also writes
docs/screenshots/persona.png and docs/screenshots/campaign-board.png.
"""

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from approvals.models import AssetReview, ReviewState
from avatars.models import Persona
from avatars.services import library_item_create
from campaigns.models import Campaign
from config.celery import app as celery_app
from content.models import Asset
from generation.models import GeneratorModel
from generation.services.directions import directions_compute
from publishing import clock
from publishing.models import Post
from publishing.services import channel_create, post_create
from tests.conftest import PASSWORD, campaign_assets, screenshot
from tests.integration.conftest import celery_worker, wait_for
from tests.publishing.conftest import approve

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
README_SHOTS = ROOT / "docs" / "screenshots"
README_HEIGHT = 1400  # px of the page's top shown in the README
# A Wednesday on publishing's clock (publishing/clock.py), so the calendar's days are fixed.
START = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
LIBRARY = [
    ("look", "Dark jacket", "dark_jacket"),
    ("look", "Shirt and tie", "tie"),
    ("pose", "Phone in hand", "handPhone"),
    ("pose", "Waving", "waveLongArms"),
]


@pytest.fixture
def bundled_model(settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    call_command("load_default_model", verbosity=0)
    model = GeneratorModel.objects.get(slug="notionists-64")
    # What a worker on the default queue does after registration: the persona page's sliders need them.
    directions_compute(model_id=model.pk)
    return model


@pytest.fixture
def shared_clock(settings, tmp_path):
    settings.PUBLISHING_CLOCK_FILE = str(tmp_path / "publishing-clock")
    clock.travel_to(START)
    return settings.PUBLISHING_CLOCK_FILE


def sign_in(page, base_url, username):
    page.goto(base_url + reverse("login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Log out").is_visible(), f"{username} could not sign in"


class Steps:
    """Numbered screenshots of one journey; with README_SCREENSHOTS set, some
    are also written (the window, not the whole page) to docs/screenshots/."""

    def __init__(self, page):
        self.page, self.number = page, 0

    def shot(self, name, *, readme=None):
        self.number += 1
        # Pictures load lazily as they scroll into view, which a full-page screenshot never does.
        self.page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
        self.page.wait_for_function("[...document.images].every(i => i.complete)", timeout=60_000)
        screenshot(self.page, f"journey-{self.number:02d}-{name}")
        if readme and os.environ.get("README_SCREENSHOTS"):
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            height = self.page.evaluate("document.documentElement.scrollHeight")
            clip = {"x": 0, "y": 0, "width": 1280, "height": min(height, README_HEIGHT)}
            self.page.screenshot(path=str(README_SHOTS / readme), full_page=True, clip=clip)


def test_a_marketer_goes_from_a_new_face_to_a_scheduled_post(
    services, settings, tmp_path, media_root, bundled_model, shared_clock, live_server, browser_page, owner, brand,
    reviewer,
):  # fmt: skip
    model = bundled_model
    for kind, name, value in LIBRARY:
        library_item_create(actor=owner, brand=brand, model=model, kind=kind, name=name, value=value)
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    steps = Steps(page)
    celery_app.control.purge()
    worker = celery_worker(
        media=media_root,
        log_path=tmp_path / "journey-worker.log",
        hostname="journey",
        env={"MODELS_ROOT": str(settings.MODELS_ROOT), "PUBLISHING_CLOCK_FILE": shared_clock},
    )
    with worker:
        # 1. Sign in; the brand switcher leads to the brand.
        page.goto(base + reverse("home"))
        assert page.get_by_role("heading", name="Log in").is_visible()
        steps.shot("sign-in")
        sign_in(page, base, owner.username)
        steps.shot("brands")
        page.get_by_role("link", name="Acme").first.click()
        page.wait_for_load_state()
        steps.shot("brand")

        # 2. A new face from the candidate grid.
        page.get_by_role("link", name=re.compile("candidate grid|Find a new face", re.I)).first.click()
        page.wait_for_load_state()
        page.get_by_role("button", name="Show candidates").click()
        candidate = page.get_by_role("link", name="Candidate from seed 3")
        candidate.wait_for()
        assert page.get_by_role("link", name=re.compile(r"^Candidate from seed \d+$")).count() == 12
        steps.shot("candidate-grid")
        candidate.click()
        page.wait_for_load_state()
        assert page.get_by_label("Seed").input_value() == "3"
        page.get_by_label("Name").fill("Mia")
        page.get_by_label("Handle").fill("mia")
        # The outfit and gesture, chosen by picture: a light jacket, waving.
        outfit = page.get_by_role("group", name=re.compile("light.jacket", re.I))
        outfit.get_by_role("radio", name=re.compile(r"\bwave long arm$")).check()
        page.locator("#chosen-face", has_text="light jacket, wave long arm").wait_for()
        steps.shot("new-persona")
        page.get_by_role("button", name="Create persona").click()
        page.wait_for_url(re.compile(r"/personas/\d+/$"))
        persona = Persona.objects.for_brand(brand).get(handle="mia")
        assert persona.seed == 3 and persona.current_version.number == 1
        assert persona.current_version.params["class_index"] == model.class_names.index("light_jacket/waveLongArm")
        assert page.get_by_role("heading", name=re.compile("^Mia")).is_visible()
        steps.shot("persona-created")

        # 3. Preview, then apply, a look and then a pose from the library.
        looks = page.locator("#looks")
        for number, (kind, name) in enumerate([("Look", "Dark jacket"), ("Pose", "Phone in hand")], start=2):
            looks.get_by_role("radio", name=re.compile(f"{kind}: {name}")).check()
            looks.get_by_role("button", name="Preview").click()
            preview = looks.get_by_role("img", name=re.compile("with this change"))
            preview.wait_for()
            assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
            persona.refresh_from_db()
            assert persona.current_version.number == number - 1  # a preview saves nothing
            steps.shot(f"preview-{kind.lower()}")
            looks.get_by_role("radio", name=re.compile(f"{kind}: {name}")).check()
            looks.get_by_role("button", name="Apply").click()
            page.wait_for_load_state()
            persona.refresh_from_db()
            assert persona.current_version.number == number
            assert page.get_by_text(re.compile(f"v{number}")).first.is_visible()
        # The persona's own render, by the worker: the page shows it without a reload.
        page.get_by_role("button", name="Render").click()
        page.wait_for_load_state()
        wait_for(
            lambda: Asset.objects.for_brand(brand).filter(persona=persona).exists(), timeout=120, what="the render"
        )
        gallery_image = page.get_by_role("img", name=re.compile(r"^Mia, rendered"))
        gallery_image.first.wait_for(timeout=60_000)
        page.goto(base + reverse("persona-detail", args=[brand.slug, persona.pk]))  # without the flash message
        steps.shot("persona", readme="persona.png")

        # 4. A small campaign: 1 version x 2 looks x 2 poses x 1:1 x 1 variant, watched on the board.
        page.goto(base + reverse("campaign-create", args=[brand.slug]))
        page.get_by_label("Name").fill("Spring drop")
        page.get_by_role("checkbox", name=re.compile("Mia")).check()
        for name in ("Dark jacket", "Shirt and tie", "Phone in hand", "Waving"):
            page.get_by_role("checkbox", name=re.compile(name)).check()
        for checkbox in page.locator("input[name=formats]").all():
            checkbox.set_checked(checkbox.get_attribute("value") == "1:1")
        page.get_by_label("Variants").fill("1")
        page.locator("#live-estimate", has_text="4 images").wait_for()
        steps.shot("campaign-builder")
        page.get_by_role("button", name="Submit campaign").click()
        page.wait_for_url(re.compile(r"/campaigns/\d+/$"))
        page.locator("#progress", has_text="4 / 4 done").wait_for(timeout=180_000)
        campaign = Campaign.objects.for_brand(brand).get()
        board_images = page.locator(".board img")
        wait_for(lambda: board_images.count() == 4, timeout=30, what="four pictures on the board")
        page.wait_for_load_state("networkidle")
        assert all(image.evaluate("i => i.complete && i.naturalWidth > 0") for image in board_images.all())
        steps.shot("campaign-board-live")
        page.reload()
        steps.shot("campaign-board", readme="campaign-board.png")

        # 5. Into review; a reviewer approves all four in the queue.
        page.get_by_role("button", name="Submit 4 finished images for review").click()
        page.wait_for_load_state()
        assert "Submitted for review: 4 images." in page.locator(".message").first.inner_text()
        page.context.clear_cookies()
        sign_in(page, base, reviewer.username)
        page.goto(base + reverse("approval-queue", args=[brand.slug]))
        assert page.locator(".queue-item").count() == 4
        for checkbox in page.get_by_role("checkbox", name="select").all():
            checkbox.check()
        steps.shot("approval-queue")
        page.get_by_role("group", name=re.compile("Selected images")).get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        assert "Approved 4 images." in page.locator(".message").first.inner_text()
        reviews = AssetReview.objects.for_brand(brand).filter(asset__job__campaign_item__campaign=campaign)
        assert sorted(reviews.values_list("state", flat=True)) == [ReviewState.APPROVED] * 4
        wait_for(
            lambda: Asset.objects.for_brand(brand).filter(review__in=reviews, released_at__isnull=False).count() == 4,
            timeout=60,
            what="the approved files",
        )
        steps.shot("approved")

        # 6. The owner adds a channel and schedules a post of an approved image.
        page.context.clear_cookies()
        sign_in(page, base, owner.username)
        page.goto(base + reverse("channel-list", args=[brand.slug]))
        form = page.locator("#channel-new")
        form.get_by_label("Name").fill("Archive")
        form.get_by_label("Kind").select_option("export")
        form.get_by_label("Caption must carry").fill("AI-generated")
        form.get_by_role("button", name="Add channel").click()
        page.wait_for_load_state()
        assert "Added the channel Archive." in page.locator(".message").first.inner_text()
        steps.shot("channels")
        asset = Asset.objects.for_brand(brand).filter(review__in=reviews).order_by("pk").first()
        page.goto(base + reverse("asset-detail", args=[brand.slug, asset.pk]))
        page.get_by_role("link", name=re.compile("Schedule a post")).click()
        page.wait_for_load_state()
        page.get_by_label("Channel").select_option(label="Archive")
        page.get_by_label("Caption").fill("Mia, ready for spring #AI-generated")
        page.get_by_label("Publish at").fill("2026-03-12T10:30")
        steps.shot("post-new")
        page.locator("#post-form").get_by_role("button", name=re.compile("Schedule")).click()
        page.wait_for_load_state()
        post = Post.objects.for_brand(brand).get()
        assert (post.asset_id, post.channel.name, post.state) == (asset.pk, "Archive", Post.State.SCHEDULED)
        assert post.publish_at == datetime(2026, 3, 12, 10, 30, tzinfo=UTC)
        assert "Scheduled on Archive for 2026-03-12 10:30." in page.locator(".message").first.inner_text()
        steps.shot("post")
        page.goto(base + reverse("publishing-calendar", args=[brand.slug]))
        assert page.locator(f"#day-2026-03-12 #post-{post.pk}").count() == 1
        steps.shot("calendar")


def test_an_outsider_gets_404_on_every_page_of_another_brand(
    services, settings, tmp_path, media_root, live_server, browser_page, owner, brand, persona, creator, reviewer,
    outsider, other_brand,
):  # fmt: skip
    settings.PUBLISHING_CLOCK_FILE = str(tmp_path / "publishing-clock")
    clock.travel_to(START)
    assets = campaign_assets(actor=creator, brand=brand, persona=persona, variants=1)
    celery_app.control.purge()  # rendered here already
    asset = approve(creator=creator, reviewer=reviewer, brand=brand, asset=assets[0])
    channel = channel_create(actor=owner, brand=brand, name="Archive", kind="export")
    post = post_create(
        actor=creator, brand=brand, asset=asset, channel=channel, publish_at=datetime(2026, 3, 12, 10, tzinfo=UTC)
    )
    campaign = Campaign.objects.for_brand(brand).get()
    slug = brand.slug
    theirs = {
        "brand page": reverse("brand-dashboard", args=[slug]),
        "persona page": reverse("persona-detail", args=[slug, persona.pk]),
        "campaign board": reverse("campaign-detail", args=[slug, campaign.pk]),
        "campaigns": reverse("campaign-list", args=[slug]),
        "asset page": reverse("asset-detail", args=[slug, asset.pk]),
        "asset image": reverse("asset-image", args=[slug, asset.pk]),
        "asset library": reverse("asset-list", args=[slug]),
        "looks and poses": reverse("library", args=[slug]),
        "approval queue": reverse("approval-queue", args=[slug]),
        "calendar": reverse("publishing-calendar", args=[slug]),
        "post page": reverse("post-detail", args=[slug, post.pk]),
        "channels": reverse("channel-list", args=[slug]),
        "team": reverse("team", args=[slug]),
    }
    page, base = browser_page, live_server.url
    sign_in(page, base, outsider.username)
    # Their own brand is there (so the 404s below are not a signed-out session's).
    own = page.goto(base + reverse("brand-dashboard", args=[other_brand.slug]))
    assert own.status == 200 and page.get_by_role("heading", name=re.compile("^Other Co")).is_visible()
    for name, path in theirs.items():
        response = page.goto(base + path)
        assert response.status == 404, name
        if name != "asset image":
            assert page.get_by_role("heading", name="Page not found").is_visible(), name
            text = page.locator("body").inner_text()
            assert "Acme" not in text and "Ava" not in text and "Archive" not in text, name
        screenshot(page, f"outsider-404-{name.replace(' ', '-')}")
    # The brand's own members see the same addresses.
    page.context.clear_cookies()
    sign_in(page, base, owner.username)
    for name, path in theirs.items():
        assert page.goto(base + path).status == 200, name
