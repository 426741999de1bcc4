"""The API tokens page of a brand's settings, through the test client."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from brands.models import ApiToken, Role
from brands.selectors import api_token_authenticate
from brands.services import agency_access_grant, agency_create, api_token_create
from tests.conftest import PASSWORD, user_make

RAW = re.compile(r"ps_live_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def page(response):
    return response.content.decode()


def token_make(actor, brand, name="Scheduler"):
    return api_token_create(actor=actor, name=name, scopes=["brands:read"], brands=[brand], brand=brand)


@pytest.fixture
def token(owner, brand):
    return token_make(owner, brand)[0]


@pytest.fixture
def token_pages(brand, token):
    """(method, url) of the page and its actions, by URL name."""
    pages = {
        "api-tokens": ("get", [brand.slug]),
        "api-token-create": ("post", [brand.slug]),
        "api-token-revoke": ("post", [brand.slug, token.pk]),
    }
    return {name: (method, reverse(name, args=args)) for name, (method, args) in pages.items()}


def create(client, brand, **data):
    data = {"name": "Agency CI", "scopes": ["personas:read", "campaigns:write"], "expires_in_days": "30", **data}
    return client.post(reverse("api-token-create", args=[brand.slug]), data)


def test_an_owner_creates_a_token_and_sees_it_once(client, owner, brand):
    login(client, owner)
    response = create(client, brand)

    assert response.status_code == 200
    assert "Copy it now, it will not be shown again." in page(response)
    assert "no-store" in response["Cache-Control"]
    (raw,) = set(RAW.findall(page(response)))
    token = api_token_authenticate(raw)
    assert token is not None and token.name == "Agency CI" and token.created_by == owner
    assert token.scopes == ["personas:read", "campaigns:write"] and list(token.brands.all()) == [brand]
    assert 29 <= (token.expires_at - token.created_at).days <= 30

    later = client.get(reverse("api-tokens", args=[brand.slug]))
    assert later.status_code == 200 and "no-store" in later["Cache-Control"]
    assert f"ps_live_{token.key_id}…" in page(later)
    assert raw not in page(later) and not RAW.search(page(later))
    assert "Copy it now" not in page(later)


def test_the_form_offers_every_scope_with_words_and_90_days(client, owner, brand):
    login(client, owner)
    response = client.get(reverse("api-tokens", args=[brand.slug]))
    assert "Approve, reject or ask for changes (approvals:decide)" in page(response)
    assert 'name="expires_in_days"' in page(response) and 'value="90"' in page(response)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["personas:admin"]}, "scopes"),
        ({"expires_in_days": "366"}, "expires_in_days"),
        ({"expires_in_days": "0"}, "expires_in_days"),
        ({"name": ""}, "name"),
    ],
)
def test_it_shows_why_a_token_was_not_made(client, owner, brand, data, field):
    login(client, owner)
    response = create(client, brand, **data)
    assert response.status_code == 200 and response.context["form"].errors.keys() == {field}
    assert 'class="errorlist' in page(response) and not RAW.search(page(response))
    assert not ApiToken.objects.exists()


def test_an_owner_revokes_a_token(client, owner, brand, token):
    login(client, owner)
    response = client.post(reverse("api-token-revoke", args=[brand.slug, token.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("api-tokens", args=[brand.slug])
    assert f"Revoked the token “Scheduler” (ps_live_{token.key_id}…)" in page(response)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert reverse("api-token-revoke", args=[brand.slug, token.pk]) not in page(response)


def test_other_members_get_403_on_the_page_and_every_action(client, brand, member, viewer, token_pages, token):
    for user in (member, viewer):
        login(client, user)
        for name, (method, url) in token_pages.items():
            assert getattr(client, method)(url).status_code == 403, (user, name)
    assert list(ApiToken.objects.all()) == [token] and token.is_active


def test_outsiders_get_404_on_the_page_and_every_post(client, outsider, other_brand, token_pages, token):
    login(client, outsider)
    for name, (method, url) in token_pages.items():
        assert getattr(client, method)(url).status_code == 404, name
        assert client.post(url).status_code in (404, 405), name
        filled = client.post(url, {"name": "x", "scopes": ["brands:read"], "expires_in_days": "9"})
        assert filled.status_code in (404, 405), name
    token.refresh_from_db()
    assert list(ApiToken.objects.all()) == [token] and token.is_active


def test_an_owner_cannot_revoke_another_brands_token_under_their_own(client, owner, brand, outsider, other_brand):
    theirs, _ = token_make(outsider, other_brand)
    login(client, owner)
    assert client.post(reverse("api-token-revoke", args=[brand.slug, theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_an_agencys_token_is_listed_without_its_other_clients_and_only_the_agency_revokes_it(
    client, owner, brand, outsider, other_brand
):
    agent = user_make("agent")
    agency = agency_create(actor=None, name="Studio", slug="studio", members=[agent])
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.CREATOR)
    agency_access_grant(actor=outsider, brand=other_brand, agency=agency, role=Role.CREATOR)
    token, _ = api_token_create(
        actor=agent, name="Studio CI", scopes=["campaigns:read"], brands=[brand, other_brand], agency=agency
    )
    login(client, owner)

    response = client.get(reverse("api-tokens", args=[brand.slug]))

    assert "Studio CI" in page(response) and "(agency token)" in page(response)
    assert "Other Co" not in page(response)
    revoke = reverse("api-token-revoke", args=[brand.slug, token.pk])
    assert revoke not in page(response)
    assert client.post(revoke).status_code == 403
    token.refresh_from_db()
    assert token.is_active


def test_owners_find_the_page_from_the_brand_and_team_pages_and_members_do_not(client, owner, member, brand):
    url = reverse("api-tokens", args=[brand.slug])
    login(client, owner)
    assert url in page(client.get(reverse("brand-dashboard", args=[brand.slug])))
    assert url in page(client.get(reverse("team", args=[brand.slug])))
    login(client, member)
    assert url not in page(client.get(reverse("brand-dashboard", args=[brand.slug])))
    assert url not in page(client.get(reverse("team", args=[brand.slug])))


def test_operators_read_tokens_in_the_admin_without_their_hash_and_change_nothing(client, owner, brand):
    token, raw = token_make(owner, brand)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    login(client, get_user_model().objects.get(username="root"))
    change = reverse("admin:brands_apitoken_change", args=[token.pk])
    for url in (reverse("admin:brands_apitoken_changelist"), change):
        response = client.get(url)
        assert response.status_code == 200, url
        assert token.key_id in page(response) and token.secret_hash not in page(response) and raw not in page(response)
    assert client.post(change, {"name": "Renamed"}).status_code == 403
    assert client.get(reverse("admin:brands_apitoken_add")).status_code == 403
