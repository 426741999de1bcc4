import pytest
from django.contrib.auth import get_user_model
from django.urls import get_resolver, reverse

from approvals.services import reviewer_group_save
from avatars.models import Persona
from avatars.services import persona_render_submit
from brands.models import Membership
from brands.services import api_token_create, invitation_create
from campaigns.models import CampaignItem
from campaigns.services import campaign_submit
from common.events import Event
from content.models import Asset
from generation.models import GenerationJob
from generation.services.jobs import generation_job_run
from publishing.services import channel_create, schedule_create
from tests.conftest import PASSWORD
from webhooks.delivery import receive
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


@pytest.fixture
def asset(owner, brand, persona, media_root):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    generation_job_run(job_id=job.pk)
    return Asset.objects.for_brand(brand).get(job=job)


@pytest.fixture
def campaign(owner, brand, persona, media_root):
    return campaign_submit(
        actor=owner, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=1
    )


@pytest.fixture
def brand_pages(settings, owner, brand, persona, asset, campaign):
    """(method, url) of every page under a brand, by URL name."""
    item = CampaignItem.objects.for_brand(brand).filter(campaign=campaign).first()
    invitation = invitation_create(
        actor=owner, brand=brand, email="x@example.com", role="viewer", accept_url_builder=str
    )
    membership = Membership.objects.get(brand=brand, user=owner)
    group = reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[owner.pk])
    token, _ = api_token_create(actor=owner, name="CI", scopes=["brands:read"], brands=[brand], brand=brand)
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    hook, _ = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1:9/", events=["job.failed"])
    [delivery_id] = receive(Event(name="job.failed", brand_id=brand.pk, payload={"job_id": 1}))
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    channel = channel_create(actor=owner, brand=brand, name="Archive", kind="export")
    schedule = schedule_create(
        actor=owner,
        brand=brand,
        persona=persona,
        name="Daily",
        kind="cron",
        cron="0 9 * * *",
        timezone="UTC",
        formats=["1:1"],
        caption_templates=["{persona}"],
    )
    pages = {
        "brand-dashboard": ("get", [brand.slug]),
        "persona-create": ("get", [brand.slug]),
        "persona-detail": ("get", [brand.slug, persona.pk]),
        "persona-render": ("post", [brand.slug, persona.pk]),
        "persona-live": ("get", [brand.slug, persona.pk]),
        "persona-version-picture": ("get", [brand.slug, persona.pk, persona.current_version.pk]),
        # Any id: the brand and the persona are checked first.
        "persona-item-picture": ("get", [brand.slug, persona.pk, 1]),
        "persona-direction-strip": ("get", [brand.slug, persona.pk, 1]),
        "persona-direction-panel": ("get", [brand.slug, persona.pk]),
        "class-picture": ("get", [brand.slug, persona.model_id, 0]),
        "persona-candidates": ("get", [brand.slug]),
        "persona-breed": ("get", [brand.slug]),
        "persona-edit": ("post", [brand.slug, persona.pk]),
        "persona-apply": ("post", [brand.slug, persona.pk]),
        "persona-rollback": ("post", [brand.slug, persona.pk, persona.current_version.pk]),
        "persona-rename": ("post", [brand.slug, persona.pk]),
        "persona-archive": ("post", [brand.slug, persona.pk]),
        "persona-unarchive": ("post", [brand.slug, persona.pk]),
        "persona-delete": ("get", [brand.slug, persona.pk]),
        "brand-settings": ("get", [brand.slug]),
        "brand-identity-threshold": ("post", [brand.slug]),
        "library": ("get", [brand.slug]),
        "library-item-create": ("post", [brand.slug]),
        "layer-group-permission-set": ("post", [brand.slug]),
        "direction-teach": ("get", [brand.slug]),
        "asset-list": ("get", [brand.slug]),
        "asset-image": ("get", [brand.slug, asset.pk]),
        "asset-detail": ("get", [brand.slug, asset.pk]),
        "asset-download": ("get", [brand.slug, asset.pk, "master"]),
        "campaign-list": ("get", [brand.slug]),
        "campaign-create": ("get", [brand.slug]),
        "campaign-detail": ("get", [brand.slug, campaign.pk]),
        "campaign-cancel": ("post", [brand.slug, campaign.pk]),
        "campaign-item-retry": ("post", [brand.slug, campaign.pk, item.pk]),
        "team": ("get", [brand.slug]),
        "team-invite": ("post", [brand.slug]),
        "team-invitation-revoke": ("post", [brand.slug, invitation.pk]),
        "team-member-role": ("post", [brand.slug, membership.pk]),
        "team-member-remove": ("post", [brand.slug, membership.pk]),
        "approval-queue": ("get", [brand.slug]),
        "approvals-decide": ("post", [brand.slug]),
        "approvals-submit": ("post", [brand.slug]),
        "approval-workflow": ("get", [brand.slug]),
        "reviewer-group-create": ("post", [brand.slug]),
        "reviewer-group-update": ("post", [brand.slug, group.pk]),
        "asset-comment": ("post", [brand.slug, asset.pk]),
        "api-tokens": ("get", [brand.slug]),
        "api-token-create": ("post", [brand.slug]),
        "api-token-revoke": ("post", [brand.slug, token.pk]),
        "webhook-list": ("get", [brand.slug]),
        "webhook-detail": ("get", [brand.slug, hook.pk]),
        "webhook-update": ("post", [brand.slug, hook.pk]),
        "webhook-rotate": ("post", [brand.slug, hook.pk]),
        "webhook-delete": ("post", [brand.slug, hook.pk]),
        "webhook-delivery-replay": ("post", [brand.slug, hook.pk, delivery.pk]),
        # A post needs an approved image (tests/web/test_publishing_pages.py has real ones);
        # the brand is checked before the post, so any id shows who is let in.
        "publishing-calendar": ("get", [brand.slug]),
        "post-create": ("get", [brand.slug]),
        "post-detail": ("get", [brand.slug, 1]),
        "post-reschedule": ("post", [brand.slug, 1]),
        "post-cancel": ("post", [brand.slug, 1]),
        "channel-list": ("get", [brand.slug]),
        "channel-edit": ("get", [brand.slug, channel.pk]),
        "schedule-list": ("get", [brand.slug]),
        "schedule-detail": ("get", [brand.slug, schedule.pk]),
        "schedule-delete": ("post", [brand.slug, schedule.pk]),
    }
    return {name: (method, reverse(name, args=args)) for name, (method, args) in pages.items()}


def route(name):
    return str(get_resolver().reverse_dict.getlist(name)[0][1])


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def test_it_covers_every_brand_page(brand_pages):
    # The API's routes are walked by tests/api/test_outsiders.py, operation by operation.
    brand_routes = {
        name
        for name in get_resolver().reverse_dict
        if isinstance(name, str) and "brand_slug" in route(name) and not route(name).startswith("api/v1/")
    }
    assert brand_routes == set(brand_pages)


def test_it_answers_404_to_outsiders_on_every_brand_page(client, outsider, other_brand, brand_pages):
    login(client, outsider)
    for name, (method, url) in brand_pages.items():
        assert getattr(client, method)(url).status_code == 404, name
        assert client.post(url).status_code in (404, 405), name
    assert not GenerationJob.objects.unscoped().filter(requested_by=outsider).exists()
    assert not GenerationJob.objects.unscoped().filter(status=GenerationJob.Status.CANCELLED).exists()


def test_it_answers_404_for_another_brands_persona_under_ones_own_brand(client, owner, brand, other_persona):
    login(client, owner)
    url = reverse("persona-detail", kwargs={"brand_slug": brand.slug, "persona_id": other_persona.pk})
    assert client.get(url).status_code == 404
    render = reverse("persona-render", kwargs={"brand_slug": brand.slug, "persona_id": other_persona.pk})
    assert client.post(render).status_code == 404


def test_it_sends_anonymous_visitors_to_the_login_page(client, brand_pages):
    for name, (method, url) in brand_pages.items():
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), name


def test_it_shows_members_the_dashboard_persona_and_image(client, member, brand, persona, asset):
    login(client, member)
    home = client.get(reverse("home"))
    assert b"Acme" in home.content
    dashboard = client.get(reverse("brand-dashboard", args=[brand.slug]))
    assert b"Ava" in dashboard.content and b"New persona from a seed" in dashboard.content
    detail = client.get(reverse("persona-detail", args=[brand.slug, persona.pk]))
    image_url = reverse("asset-image", args=[brand.slug, asset.pk])
    assert image_url.encode() in detail.content and b"AI-generated" in detail.content
    image = client.get(image_url)
    # The preview is the thumbnail, which carries the DRAFT mark.
    assert image.status_code == 200 and image["Content-Type"] == "image/webp"
    assert b"".join(image.streaming_content) == asset.thumbnail.read()


def test_it_lets_viewers_look_but_not_create_or_render(client, viewer, brand, persona, asset):
    login(client, viewer)
    assert client.get(reverse("persona-detail", args=[brand.slug, persona.pk])).status_code == 200
    assert b"New persona" not in client.get(reverse("brand-dashboard", args=[brand.slug])).content
    assert client.get(reverse("persona-create", args=[brand.slug])).status_code == 403
    assert client.post(reverse("persona-render", args=[brand.slug, persona.pk])).status_code == 403


def test_it_creates_a_persona_from_the_form(client, member, brand, generator_model):
    login(client, member)
    response = client.post(
        reverse("persona-create", args=[brand.slug]),
        {"name": "Nova", "handle": "nova", "model": generator_model.pk, "seed": 123, "truncation_psi": 0.6},
    )
    persona = Persona.objects.for_brand(brand).get(handle="nova")
    assert response.status_code == 302 and response.url == reverse("persona-detail", args=[brand.slug, persona.pk])


def test_it_shows_form_errors_for_a_taken_handle(client, member, brand, persona, generator_model):
    login(client, member)
    response = client.post(
        reverse("persona-create", args=[brand.slug]),
        {"name": "Ava 2", "handle": "ava", "model": generator_model.pk, "seed": 1, "truncation_psi": 0.6},
    )
    assert response.status_code == 200 and b"already has a persona with the handle @ava" in response.content


def test_it_queues_a_render_from_the_persona_page(client, member, brand, persona):
    login(client, member)
    response = client.post(reverse("persona-render", args=[brand.slug, persona.pk]), follow=True)
    job = GenerationJob.objects.for_brand(brand).get()
    assert job.requested_by == member and job.status == GenerationJob.Status.QUEUED
    assert b"Render queued" in response.content and b'http-equiv="refresh"' in response.content


def test_it_shows_assets_in_the_admin(client, asset):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    login(client, admin)
    for url in (
        reverse("admin:content_asset_changelist"),
        reverse("admin:content_asset_change", args=[asset.pk]),
        reverse("admin:avatars_persona_changelist"),
        reverse("admin:generation_generationjob_changelist"),
        reverse("admin:audit_auditevent_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"data:image/png;base64," in client.get(reverse("admin:content_asset_change", args=[asset.pk])).content
