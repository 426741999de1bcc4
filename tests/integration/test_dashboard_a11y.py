"""Accessibility and phone width of every dashboard page, in a real browser
(Debian's Chromium, Playwright) against a live server on PostgreSQL.

Each page a signed-in owner (and a creator, for the 403 page) can reach is
opened at 1280 px and at 390 px. On each:

- nothing scrolls sideways: document.documentElement.scrollWidth is at most the
  window's width (wide tables scroll inside themselves instead);
- axe-core (the copy bundled in the axe-playwright-python package, run inside
  the page; no CDN) finds no violation of the rules tagged wcag2a, wcag2aa,
  wcag21a and wcag21aa (labels and names, colour contrast of at least 4.5:1,
  keyboard access to scrolling regions, valid ARIA, alt text, language,
  title...), plus the best-practice rules AXE_BEST_PRACTICES below (no positive
  tabindex, one main landmark, content inside landmarks, an h1);
- the first Tab lands on the "Skip to content" link and the focused element
  has a visible outline.

Every failure of every page is collected and reported together. A screenshot
of each page at each width is saved as an artifact (tests/conftest.py:
screenshot), named a11y-<page>-<width>.

The data is real: the bundled default model, a persona, looks and poses,
a campaign rendered by the engine, an approved image posted on a channel,
a schedule, a webhook endpoint with a delivery, an API token, an invitation.
"""

import json
import re
from datetime import timedelta

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from django.core.management import call_command
from django.urls import get_resolver, reverse

from approvals.services import reviewer_group_save
from avatars.models import LibraryItem
from avatars.services import library_item_create, persona_archive, persona_create_from_seed
from brands.models import Role
from brands.services import api_token_create, brand_create, invitation_create, invitation_token
from campaigns.models import Campaign
from common.events import Event
from config.celery import app as celery_app
from generation.models import GeneratorModel
from publishing import clock
from publishing.services import channel_create, post_create, schedule_create
from tests.conftest import PASSWORD, campaign_assets, screenshot
from tests.publishing.conftest import approve
from webhooks.delivery import receive
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WIDTHS = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_BEST_PRACTICES = ["tabindex", "landmark-one-main", "region", "page-has-heading-one"]

# Swagger UI (the API docs page, drf-spectacular-sidecar's copy) draws each operation's
# summary as a button holding the copy-path button: a defect of Swagger UI's own markup
# that this project's templates and styles cannot reach.
KNOWN = {"api-docs": ("nested-interactive",)}

# Routes under a brand that are not pages: POST-only actions (tests/web/test_pages.py
# checks they answer 405 to a GET, shown below as our own 405 page), pictures and file
# downloads, and the parts of a page htmx swaps in (checked inside their page).
NOT_PAGES = {
    "persona-live",
    "persona-direction-panel",
    "persona-version-picture",
    "persona-item-picture",
    "persona-direction-strip",
    "class-picture",
    "persona-render",
    "persona-edit",
    "persona-apply",
    "persona-rollback",
    "persona-rename",
    "persona-archive",
    "persona-unarchive",
    "brand-identity-threshold",
    "library-item-create",
    "layer-group-permission-set",
    "asset-image",
    "asset-download",
    "campaign-cancel",
    "campaign-item-retry",
    "team-invite",
    "team-invitation-revoke",
    "team-member-role",
    "team-member-remove",
    "approvals-decide",
    "approvals-submit",
    "reviewer-group-create",
    "reviewer-group-update",
    "asset-comment",
    "api-token-create",
    "api-token-revoke",
    "webhook-update",
    "webhook-rotate",
    "webhook-delete",
    "webhook-delivery-replay",
    "post-reschedule",
    "post-cancel",
    "schedule-delete",
}


def route(name):
    return str(get_resolver().reverse_dict.getlist(name)[0][1])


def brand_route_names():
    return {
        name
        for name in get_resolver().reverse_dict
        if isinstance(name, str) and "brand_slug" in route(name) and not route(name).startswith("api/v1/")
    }


@pytest.fixture
def bundled_model(settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    call_command("load_default_model", verbosity=0)
    return GeneratorModel.objects.get(slug="notionists-64")


@pytest.fixture
def studio(settings, tmp_path, media_root, bundled_model, owner, brand, creator, reviewer):
    """A brand with something on every page; returns {page name: url path}."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.PUBLISHING_CLOCK_FILE = str(tmp_path / "publishing-clock")
    model = bundled_model
    persona = persona_create_from_seed(
        actor=owner,
        brand=brand,
        model=model,
        seed=42,
        name="Ava",
        handle="ava",
        truncation_psi=0.7,
        class_index=model.class_names.index("light_jacket/waveLongArm"),
    )
    # An archived persona nothing uses: the gallery's archived filter, its page, its delete confirmation.
    bea = persona_create_from_seed(
        actor=owner, brand=brand, model=model, seed=7, name="Bea", handle="bea", truncation_psi=0.7,
        class_index=model.class_names.index("light_jacket/waveLongArm"),
    )  # fmt: skip
    persona_archive(actor=owner, brand=brand, persona=bea)
    brand_create(actor=owner, name="Zeta Labs", slug="zeta")  # the owner's second brand: the header's switcher
    library_item_create(actor=owner, brand=brand, model=model, kind="look", name="Dark jacket", value="dark_jacket")
    library_item_create(actor=owner, brand=brand, model=model, kind="pose", name="Phone in hand", value="handPhone")
    assets = campaign_assets(actor=creator, brand=brand, persona=persona, variants=2)
    celery_app.control.purge()  # the campaign's render tasks: rendered here already
    asset = approve(creator=creator, reviewer=reviewer, brand=brand, asset=assets[0])
    channel = channel_create(actor=owner, brand=brand, name="Archive", kind="export", caption_labels=["AI-generated"])
    post = post_create(
        actor=creator,
        brand=brand,
        asset=asset,
        channel=channel,
        publish_at=clock.now() + timedelta(days=1),
        caption="Ava says hello #AI-generated",
    )
    schedule = schedule_create(
        actor=owner,
        brand=brand,
        persona=persona,
        name="Mornings",
        kind="cron",
        cron="0 9 * * *",
        timezone="UTC",
        formats=["1:1"],
        caption_templates=["{persona} says good morning #AI-generated"],
        looks=list(LibraryItem.objects.for_brand(brand).filter(kind="look")),
    )
    hook, _secret = webhook_endpoint_create(
        actor=owner, brand=brand, url="http://127.0.0.1:9/hook", events=["job.failed"], description="Feed bridge"
    )
    receive(Event(name="job.failed", brand_id=brand.pk, payload={"job_id": 1}))
    assert WebhookDelivery.objects.filter(endpoint=hook).exists()
    api_token_create(actor=owner, name="Agency sync", scopes=["brands:read"], brands=[brand], brand=brand)
    reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[reviewer.pk])
    invitation = invitation_create(
        actor=owner, brand=brand, email="new@example.com", role=Role.VIEWER, accept_url_builder=str
    )
    campaign = Campaign.objects.for_brand(brand).get()
    slug = brand.slug
    pages = {
        "brand-dashboard": reverse("brand-dashboard", args=[slug]),
        "persona-detail": reverse("persona-detail", args=[slug, persona.pk]),
        "persona-create": reverse("persona-create", args=[slug]),
        "persona-candidates": reverse("persona-candidates", args=[slug]),
        "persona-breed": reverse("persona-breed", args=[slug]),
        "direction-teach": reverse("direction-teach", args=[slug]),
        "library": reverse("library", args=[slug]),
        "asset-list": reverse("asset-list", args=[slug]),
        "asset-detail": reverse("asset-detail", args=[slug, asset.pk]),
        "campaign-list": reverse("campaign-list", args=[slug]),
        "campaign-create": reverse("campaign-create", args=[slug]),
        "campaign-detail": reverse("campaign-detail", args=[slug, campaign.pk]),
        "approval-queue": reverse("approval-queue", args=[slug]) + "?state=in_review",
        "approval-workflow": reverse("approval-workflow", args=[slug]),
        "publishing-calendar": reverse("publishing-calendar", args=[slug]),
        "post-create": reverse("post-create", args=[slug]) + f"?asset={asset.pk}",
        "post-detail": reverse("post-detail", args=[slug, post.pk]),
        "channel-list": reverse("channel-list", args=[slug]),
        "channel-edit": reverse("channel-edit", args=[slug, channel.pk]),
        "schedule-list": reverse("schedule-list", args=[slug]),
        "schedule-detail": reverse("schedule-detail", args=[slug, schedule.pk]),
        "team": reverse("team", args=[slug]),
        "api-tokens": reverse("api-tokens", args=[slug]),
        "webhook-list": reverse("webhook-list", args=[slug]),
        "webhook-detail": reverse("webhook-detail", args=[slug, hook.pk]),
        "brand-settings": reverse("brand-settings", args=[slug]),
        "persona-delete": reverse("persona-delete", args=[slug, persona.pk]),
    }
    extra = {
        "home": reverse("home"),
        "brand-dashboard-search": reverse("brand-dashboard", args=[slug]) + "?q=a&archived=all",
        "persona-detail-archived": reverse("persona-detail", args=[slug, bea.pk]),
        "persona-delete-confirm": reverse("persona-delete", args=[slug, bea.pk]),
        "calendar-week": reverse("publishing-calendar", args=[slug]) + "?view=week",
        "approval-queue-drafts": reverse("approval-queue", args=[slug]),
        "invitation-accept": reverse("invitation-accept", args=[invitation_token(invitation=invitation)]),
        "api-docs": reverse("api-docs"),
        "404": "/brands/no-such-brand/",
        "405": reverse("persona-render", args=[slug, persona.pk]),
    }
    return {"pages": pages, "extra": extra, "creator_403": reverse("api-tokens", args=[slug])}


def sign_in(page, base_url, username):
    page.goto(base_url + reverse("login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.wait_for_load_state()


def keyboard_check(page, name, problems):
    """On a freshly loaded page: the first Tab lands on the skip link (unless a field
    has autofocus), with a visible focus indicator, and the link moves focus to the
    main content."""
    page.set_viewport_size(WIDTHS["1280"])
    autofocused = page.evaluate("() => document.activeElement !== document.body")
    if not autofocused:
        page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const e = document.activeElement, s = getComputedStyle(e);"
        " return {text: e.textContent.trim(), tag: e.tagName, name: e.name || '', outline: s.outlineStyle,"
        " shadow: s.boxShadow}; }"
    )
    if focused["outline"] == "none" and focused["shadow"] == "none":
        problems.append(f"{name}: the focused {focused['tag']} {focused['name']} has no visible focus indicator")
    if autofocused:
        return
    if focused["text"] != "Skip to content":
        problems.append(f"{name}: the first Tab went to {focused['tag']} {focused['text'][:40]!r}, not the skip link")
        return
    page.keyboard.press("Enter")
    if page.evaluate("() => document.activeElement.id") != "content":
        problems.append(f"{name}: the skip link did not move focus to the main content")


def audit(page, name, problems, *, known=()):
    """Check the open page (keyboard, then both widths); add what is wrong to
    `problems`. `known`: axe rule ids not counted on this page."""
    keyboard_check(page, name, problems)
    for width, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        scroll_width, inner_width, wide = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth,"
            " [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth + 1 && !e.closest('table')).slice(0, 3).map(e => e.outerHTML.slice(0, 80))]"
        )
        if scroll_width > inner_width:
            problems.append(f"{name} @{width}: {scroll_width} px wide in a {inner_width} px window ({wide})")
        screenshot(page, f"a11y-{name}-{width}")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(AXE_SCRIPT)
        violations = []
        for run_only in ({"type": "tag", "values": AXE_TAGS}, {"type": "rule", "values": AXE_BEST_PRACTICES}):
            options = {"runOnly": run_only, "resultTypes": ["violations"]}
            violations += page.evaluate(f"axe.run(document, {json.dumps(options)})")["violations"]
        for violation in violations:
            if violation["id"] in known:
                continue
            targets = [", ".join(map(str, node["target"])) for node in violation["nodes"][:4]]
            summary = violation["nodes"][0].get("failureSummary", "").replace("\n", " ")[:300]
            problems.append(f"{name} @{width}: {violation['id']} ({violation['impact']}) on {targets}: {summary}")


def test_every_dashboard_page_is_accessible_and_fits_a_phone(live_server, browser_page, studio, creator):
    assert brand_route_names() == set(studio["pages"]) | NOT_PAGES, (
        "a page under /brands/ is missing from this test (add it to `pages`, or to NOT_PAGES if it is no page)"
    )
    page, base, problems = browser_page, live_server.url, []

    page.goto(base + reverse("login"))
    audit(page, "sign-in", problems)
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.wait_for_load_state()
    audit(page, "sign-in-error", problems)

    sign_in(page, base, "owner")
    visited = {}
    for name, path in {**studio["pages"], **studio["extra"]}.items():
        response = page.goto(base + path)
        page.wait_for_load_state("networkidle")
        visited[name] = response.status
        audit(page, name, problems, known=KNOWN.get(name, ()))
        if name == "persona-candidates":
            page.goto(base + path)  # without the #content the skip link added
            page.get_by_role("button", name="Show candidates").click()
            page.wait_for_load_state("networkidle")
            audit(page, "persona-candidate-grid", problems)

    page.context.clear_cookies()
    sign_in(page, base, creator.username)
    visited["403"] = page.goto(base + studio["creator_403"]).status
    audit(page, "403", problems)

    expected = {name: 200 for name in visited} | {"404": 404, "405": 405, "403": 403}
    assert visited == expected
    assert not problems, f"{len(problems)} accessibility or width problems:\n" + "\n".join(problems)
