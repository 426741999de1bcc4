"""The brand settings page (owners): members, workflow steps, API tokens, webhook
endpoints, channels' disclosure policies, this month's images against the quota,
and the identity flag threshold (edited here, audited); the header's brand switcher."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from avatars.services import persona_render_submit
from brands.models import Brand, Role
from brands.services import api_token_create, brand_create, brand_identity_threshold_set, membership_add
from generation.models import GenerationJob
from publishing.services import channel_create
from tests.conftest import PASSWORD
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def settings_url(brand):
    return reverse("brand-settings", args=[brand.slug])


def threshold_url(brand):
    return reverse("brand-identity-threshold", args=[brand.slug])


def test_it_answers_404_to_outsiders_on_the_settings_page_and_its_form(client, outsider, other_brand, brand):
    login(client, outsider)
    assert client.get(settings_url(brand)).status_code == 404
    assert client.post(threshold_url(brand), {"identity_threshold": "0.9"}).status_code == 404
    brand.refresh_from_db()
    assert brand.identity_threshold == 0.5


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_it_keeps_the_settings_page_to_owners(client, request, brand, who):
    login(client, request.getfixturevalue(who))
    assert client.get(settings_url(brand)).status_code == 403
    assert client.post(threshold_url(brand), {"identity_threshold": "0.9"}).status_code == 403
    assert settings_url(brand).encode() not in client.get(reverse("brand-dashboard", args=[brand.slug])).content
    brand.refresh_from_db()
    assert brand.identity_threshold == 0.5
    assert not AuditEvent.objects.filter(action="brand.identity_threshold_set").exists()


def test_it_gathers_the_brands_settings_on_one_page(client, settings, owner, member, viewer, brand, persona):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    persona_render_submit(actor=owner, brand=brand, persona=persona)
    persona_render_submit(actor=member, brand=brand, persona=persona)
    failed = persona_render_submit(actor=owner, brand=brand, persona=persona)
    GenerationJob.objects.for_brand(brand).filter(pk=failed.pk).update(status=GenerationJob.Status.FAILED)
    Brand.objects.filter(pk=brand.pk).update(monthly_image_quota=10)
    api_token_create(actor=owner, name="Agency sync", scopes=["brands:read"], brands=[brand], brand=brand)
    webhook_endpoint_create(
        actor=owner, brand=brand, url="http://127.0.0.1:9/hook", events=["job.failed"], description="Feed bridge"
    )
    channel_create(actor=owner, brand=brand, name="Archive", kind="export", caption_labels=["#AI-generated"])
    login(client, owner)
    dashboard = client.get(reverse("brand-dashboard", args=[brand.slug])).content.decode()
    assert settings_url(brand) in dashboard
    response = client.get(settings_url(brand))
    page = response.content.decode()
    assert response.status_code == 200
    # Two images queued this month count; the failed one does not.
    assert "<strong>2</strong> of 10 images used (8 left)" in page and 'max="10" value="2"' in page
    assert "3 members" in page and "member" in page and "viewer" in page
    assert '<li>Review <span class="muted">by owners or reviewers</span></li>' in page
    assert "1 active token" in page and "Agency sync" in page
    assert "Feed bridge" in page
    assert "Archive</a>" in page and "caption must say “#AI-generated”" in page
    assert "file carries C2PA and the AI-generated source type" in page
    for name in ("team", "approval-workflow", "api-tokens", "webhook-list", "channel-list"):
        assert reverse(name, args=[brand.slug]) in page, name
    assert 'name="identity_threshold"' in page and 'value="0.5"' in page


def test_it_sets_the_identity_threshold_with_an_audit_row(client, owner, brand):
    login(client, owner)
    response = client.post(threshold_url(brand), {"identity_threshold": "0.82"})
    assert response.status_code == 302 and response.url == settings_url(brand) + "#identity"
    brand.refresh_from_db()
    assert brand.identity_threshold == 0.82
    [row] = AuditEvent.objects.filter(brand=brand, action="brand.identity_threshold_set")
    assert row.actor == owner and row.before == {"identity_threshold": 0.5}
    assert row.after == {"identity_threshold": 0.82}
    assert "now flagged" in client.get(response.url).content.decode()


@pytest.mark.parametrize("value", ["1.5", "-0.1", "much", ""])
def test_it_shows_a_refused_threshold_in_the_form(client, owner, brand, value):
    login(client, owner)
    response = client.post(threshold_url(brand), {"identity_threshold": value})
    assert response.status_code == 400 and b'class="errorlist' in response.content
    brand.refresh_from_db()
    assert brand.identity_threshold == 0.5
    assert not AuditEvent.objects.filter(action="brand.identity_threshold_set").exists()


def test_it_refuses_a_threshold_out_of_range_in_the_service(owner, member, brand):
    from django.core.exceptions import PermissionDenied, ValidationError

    for value in (1.01, float("nan"), "x"):
        with pytest.raises(ValidationError, match="a number from 0 to 1"):
            brand_identity_threshold_set(actor=owner, brand=brand, identity_threshold=value)
    with pytest.raises(PermissionDenied):
        brand_identity_threshold_set(actor=member, brand=brand, identity_threshold=0.7)
    brand.refresh_from_db()
    assert brand.identity_threshold == 0.5


def test_it_offers_a_brand_switcher_to_members_of_several_brands(client, owner, member, brand):
    second = brand_create(actor=owner, name="Zeta Labs", slug="zeta")
    login(client, owner)
    page = client.get(reverse("brand-dashboard", args=[brand.slug])).content.decode()
    switcher = page[page.index('class="brand-switcher"') : page.index("</nav>")]
    assert reverse("brand-dashboard", args=[second.slug]) in switcher and "Zeta Labs" in switcher
    assert f'href="{reverse("brand-dashboard", args=[brand.slug])}" aria-current="page"' in switcher
    # A member of one brand has nothing to switch to.
    client.logout()
    login(client, member)
    assert 'class="brand-switcher"' not in client.get(reverse("brand-dashboard", args=[brand.slug])).content.decode()
    membership_add(actor=owner, brand=second, user=member, role=Role.VIEWER)
    assert "Zeta Labs" in client.get(reverse("home")).content.decode()
    page = client.get(reverse("brand-dashboard", args=[brand.slug])).content.decode()
    assert 'class="brand-switcher"' in page
