"""API tokens: made by brand owners or agency members, shown once, stored as
a hash, scoped, bounded in time, revocable, each change audited."""

import logging
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from brands.models import API_SCOPES, ApiToken, Membership, Role
from brands.selectors import (
    api_token_authenticate,
    api_token_brands,
    api_tokens_for_agency,
    api_tokens_for_brand,
    brand_role_require,
)
from brands.services import (
    API_TOKEN_LIFETIME,
    agency_access_grant,
    agency_create,
    api_token_create,
    api_token_revoke,
    brand_create,
    membership_remove,
)
from brands.tokens import token_hash
from tests.conftest import user_make


def brand_token(actor, brand, **kwargs):
    kwargs = {"name": "CI", "scopes": ["personas:read"], "brands": [brand], **kwargs}
    return api_token_create(actor=actor, brand=brand, **kwargs)


def field_error(excinfo):
    return set(excinfo.value.message_dict)


@pytest.fixture
def agent(db):
    return user_make("agent")


@pytest.fixture
def agency(agent):
    return agency_create(actor=None, name="Studio", slug="studio", members=[agent])


@pytest.fixture
def client_brands(owner, brand, outsider, other_brand, agency):
    """Acme and Other Co are both clients of the agency; a third brand is not."""
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.CREATOR)
    agency_access_grant(actor=outsider, brand=other_brand, agency=agency, role=Role.VIEWER)
    return brand, other_brand


@pytest.fixture
def unrelated_brand(db):
    return brand_create(actor=user_make("third"), name="Third", slug="third")


def agency_token(agent, agency, brands, **kwargs):
    kwargs = {"name": "Agency CI", "scopes": ["campaigns:write"], **kwargs}
    return api_token_create(actor=agent, agency=agency, brands=brands, **kwargs)


# --- creating ---------------------------------------------------------------------


def test_it_gives_an_owner_a_raw_token_once_and_keeps_only_its_hash(owner, brand):
    token, raw = brand_token(owner, brand, scopes=["personas:write", "brands:read", "personas:write"])

    assert raw.startswith(f"ps_live_{token.key_id}_") and len(token.key_id) == 12
    assert token.secret_hash == token_hash(raw)
    assert token.scopes == ["brands:read", "personas:write"]  # API_SCOPES order, once each
    assert list(token.brands.all()) == [brand] and token.brand == brand and token.agency is None
    assert token.created_by == owner and token.is_active and token.last_used_at is None
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    secret = raw.removeprefix(f"ps_live_{token.key_id}_")
    assert len(secret) == 43
    for value in map(str, row.values()):
        assert raw not in value and secret not in value


def test_it_makes_a_token_expire_in_90_days_unless_told(owner, brand):
    token, _ = brand_token(owner, brand)
    assert token.expires_at - token.created_at == pytest.approx(API_TOKEN_LIFETIME, abs=timedelta(seconds=5))
    assert API_TOKEN_LIFETIME == timedelta(days=90)

    in_a_year = timezone.now() + timedelta(days=365)
    token, _ = brand_token(owner, brand, expires_at=in_a_year)
    assert token.expires_at == in_a_year


@pytest.mark.parametrize(
    "expires_at",
    [
        lambda now: now - timedelta(seconds=1),
        lambda now: now + timedelta(days=365, minutes=1),
        lambda now: now.replace(tzinfo=None) + timedelta(days=1),
    ],
    ids=["past", "beyond-a-year", "naive"],
)
def test_it_refuses_an_expiry_in_the_past_or_beyond_a_year(owner, brand, expires_at):
    with pytest.raises(ValidationError) as excinfo:
        brand_token(owner, brand, expires_at=expires_at(timezone.now()))
    assert field_error(excinfo) == {"expires_at"}
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("scopes", [["personas:read", "personas:admin"], ["*"], [], "personas:read", [1]])
def test_it_refuses_unknown_or_missing_scopes(owner, brand, scopes):
    with pytest.raises(ValidationError) as excinfo:
        brand_token(owner, brand, scopes=scopes)
    assert field_error(excinfo) == {"scopes"}


def test_it_accepts_every_scope(owner, brand):
    token, _ = brand_token(owner, brand, scopes=list(reversed(API_SCOPES)))
    assert token.scopes == API_SCOPES
    assert all(token.has_scope(scope) for scope in API_SCOPES) and not token.has_scope("admin")


@pytest.mark.parametrize("name", ["", "   ", "x" * 121])
def test_it_refuses_a_token_without_a_usable_name(owner, brand, name):
    with pytest.raises(ValidationError) as excinfo:
        brand_token(owner, brand, name=name)
    assert field_error(excinfo) == {"name"}


def test_a_brand_token_acts_for_its_brand_only(owner, brand, outsider, other_brand):
    with pytest.raises(ValidationError) as excinfo:
        brand_token(owner, brand, brands=[])
    assert field_error(excinfo) == {"brands"}
    with pytest.raises(ValidationError) as excinfo:
        brand_token(owner, brand, brands=[brand, other_brand])
    assert field_error(excinfo) == {"brands"}
    assert not ApiToken.objects.exists()


def test_a_token_belongs_to_a_brand_or_an_agency_not_both_nor_neither(owner, brand, agency):
    with pytest.raises(ValidationError):
        api_token_create(actor=owner, name="x", scopes=["brands:read"], brands=[brand])
    with pytest.raises(ValidationError):
        api_token_create(actor=owner, name="x", scopes=["brands:read"], brands=[brand], brand=brand, agency=agency)


def test_the_database_refuses_a_token_of_both_a_brand_and_an_agency(owner, brand, agency):
    token, _ = brand_token(owner, brand)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(agency=agency)


def test_only_owners_make_a_brands_token(brand, member, viewer, reviewer, outsider):
    for actor in (member, viewer, reviewer, outsider):
        with pytest.raises(PermissionDenied):
            brand_token(actor, brand)
    assert not ApiToken.objects.exists()


def test_it_audits_a_new_token_by_key_id_never_by_its_secret(owner, brand):
    token, raw = brand_token(owner, brand, scopes=["assets:read"])

    (event,) = AuditEvent.objects.filter(action="api_token.created")
    assert event.brand == brand and event.actor == owner
    assert event.target_type == "brands.apitoken" and event.target_id == str(token.pk)
    assert event.after["key_id"] == token.key_id and event.after["scopes"] == ["assets:read"]
    assert event.after["brands"] == ["acme"] and event.after["agency"] is None
    secret = raw.removeprefix(f"ps_live_{token.key_id}_")
    for row in AuditEvent.objects.values():
        assert not any(secret in str(value) or token.secret_hash in str(value) for value in row.values())


def test_it_writes_the_raw_token_to_no_log(owner, brand, caplog):
    with caplog.at_level(logging.DEBUG):
        token, raw = brand_token(owner, brand)
        api_token_authenticate(raw)
    assert raw.removeprefix(f"ps_live_{token.key_id}_") not in caplog.text


# --- agency tokens ---------------------------------------------------------------


def test_an_agency_member_makes_a_token_for_the_agencys_client_brands(agent, agency, client_brands):
    acme, other = client_brands
    token, raw = agency_token(agent, agency, [other, acme])

    assert token.agency == agency and token.brand is None
    assert set(token.brands.all()) == {acme, other}
    assert api_token_authenticate(raw) == token
    per_brand = AuditEvent.objects.filter(action="api_token.created", brand__isnull=False)
    # Each brand's log names only that brand: an agency's other clients stay private.
    assert {(e.brand.slug, tuple(e.after["brands"])) for e in per_brand} == {("acme", ("acme",)), ("other", ("other",))}
    (agency_wide,) = AuditEvent.objects.filter(action="api_token.created", brand__isnull=True)
    assert agency_wide.after["brands"] == ["acme", "other"] and agency_wide.after["agency"] == "studio"


def test_an_agency_token_acts_only_for_brands_the_agency_may_access(agent, agency, client_brands, unrelated_brand):
    with pytest.raises(ValidationError) as excinfo:
        agency_token(agent, agency, [client_brands[0], unrelated_brand])
    assert field_error(excinfo) == {"brands"} and "third" in str(excinfo.value)
    with pytest.raises(ValidationError) as excinfo:
        agency_token(agent, agency, [])
    assert field_error(excinfo) == {"brands"}
    assert not ApiToken.objects.exists()


def test_only_agency_members_make_an_agencys_token(owner, agency, client_brands):
    # Even an owner of a client brand is not a member of the agency.
    with pytest.raises(PermissionDenied):
        agency_token(owner, agency, [client_brands[0]])


def test_an_agency_token_stops_acting_for_a_brand_whose_access_is_withdrawn(agent, agency, client_brands):
    acme, other = client_brands
    token, _ = agency_token(agent, agency, [acme, other])
    assert list(api_token_brands(token=token)) == [acme, other]

    agency.accesses.filter(brand=other).delete()

    assert list(api_token_brands(token=token)) == [acme]


# --- authenticating --------------------------------------------------------------


def test_the_raw_token_authenticates_and_records_when_it_was_last_used(owner, brand):
    token, raw = brand_token(owner, brand)

    found = api_token_authenticate(raw)

    assert found == token and found.created_by == owner
    token.refresh_from_db()
    assert token.last_used_at is not None and found.last_used_at == token.last_used_at


def test_it_records_the_last_use_at_most_once_a_minute(owner, brand, django_assert_num_queries):
    token, raw = brand_token(owner, brand)
    api_token_authenticate(raw)
    token.refresh_from_db()
    first = token.last_used_at

    api_token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    with django_assert_num_queries(2):  # the read, and one conditional UPDATE
        api_token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_a_revoked_token_does_not_authenticate(owner, brand):
    token, raw = brand_token(owner, brand)
    api_token_revoke(actor=owner, token=token)
    assert api_token_authenticate(raw) is None


def test_an_expired_token_does_not_authenticate(owner, brand):
    token, raw = brand_token(owner, brand)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_token_authenticate(raw) is None
    token.refresh_from_db()
    assert not token.is_active and token.is_expired and token.last_used_at is None


def test_a_deactivated_creators_token_does_not_authenticate(owner, brand):
    _, raw = brand_token(owner, brand)
    owner.is_active = False
    owner.save()
    assert api_token_authenticate(raw) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw, other: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # one character of the secret
        lambda raw, other: raw[:8] + other[8:20] + raw[20:],  # another token's key_id with this secret
        lambda raw, other: raw.replace("ps_live_", "ps_test_"),
        lambda raw, other: raw[:-1],
        lambda raw, other: raw + "A",
        lambda raw, other: raw.upper(),
        lambda raw, other: raw.replace("_", "-"),
        lambda raw, other: "",
        lambda raw, other: "ps_live_",
        lambda raw, other: "ps_live_" + "0" * 12 + "_" + "A" * 43,  # well-formed, unknown
        lambda raw, other: raw.encode(),
        lambda raw, other: None,
        lambda raw, other: raw + "\x00",
        lambda raw, other: raw * 100,
    ],
)
def test_a_malformed_tampered_or_unknown_token_does_not_authenticate(owner, brand, mangle):
    _, raw = brand_token(owner, brand)
    _, other = brand_token(owner, brand, name="Other")
    assert api_token_authenticate(mangle(raw, other)) is None
    assert not ApiToken.objects.filter(last_used_at__isnull=False).exists()


def test_a_token_whose_creator_lost_their_role_authenticates_but_services_refuse_it(owner, brand, member):
    membership = Membership.objects.get(brand=brand, user=member)
    membership.role = Role.OWNER
    membership.save()
    token, raw = brand_token(member, brand)
    membership_remove(actor=owner, brand=brand, membership=membership)

    found = api_token_authenticate(raw)

    assert found == token
    with pytest.raises(PermissionDenied):
        brand_role_require(user=found.created_by, brand=brand, roles={Role.OWNER, Role.CREATOR})


# --- revoking --------------------------------------------------------------------


def test_an_owner_revokes_a_token_once_and_it_is_audited_once(owner, brand):
    token, _ = brand_token(owner, brand)

    api_token_revoke(actor=owner, token=token)
    revoked_at = ApiToken.objects.get(pk=token.pk).revoked_at
    api_token_revoke(actor=owner, token=ApiToken.objects.get(pk=token.pk))

    assert revoked_at is not None and ApiToken.objects.get(pk=token.pk).revoked_at == revoked_at
    assert token.revoked_at == revoked_at and not token.is_active
    (event,) = AuditEvent.objects.filter(action="api_token.revoked")
    assert event.brand == brand and event.actor == owner and event.after["key_id"] == token.key_id


def test_another_owner_revokes_a_brands_token_but_no_other_member_or_outsider_does(
    owner, brand, member, viewer, outsider
):
    token, _ = brand_token(owner, brand)
    for actor in (member, viewer, outsider):
        with pytest.raises(PermissionDenied):
            api_token_revoke(actor=actor, token=token)
    assert ApiToken.objects.get(pk=token.pk).is_active

    second_owner = user_make("second")
    Membership.objects.create(brand=brand, user=second_owner, role=Role.OWNER)
    api_token_revoke(actor=second_owner, token=token)
    assert not ApiToken.objects.get(pk=token.pk).is_active


def test_a_creator_who_lost_their_role_may_still_revoke_their_token(owner, brand, member):
    Membership.objects.filter(brand=brand, user=member).update(role=Role.OWNER)
    token, _ = brand_token(member, brand)
    Membership.objects.filter(brand=brand, user=member).update(role=Role.VIEWER)

    api_token_revoke(actor=member, token=token)

    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_agency_members_revoke_the_agencys_tokens_and_client_owners_do_not(agent, agency, client_brands, owner):
    token, raw = agency_token(agent, agency, list(client_brands))
    colleague = user_make("colleague")
    agency.members.add(colleague)

    with pytest.raises(PermissionDenied):
        api_token_revoke(actor=owner, token=token)
    api_token_revoke(actor=colleague, token=token)

    assert api_token_authenticate(raw) is None
    events = AuditEvent.objects.filter(action="api_token.revoked")
    assert sorted(e.brand.slug if e.brand else "" for e in events) == ["", "acme", "other"]


# --- listing ---------------------------------------------------------------------


def test_it_lists_the_tokens_acting_for_a_brand_newest_first(owner, brand, outsider, other_brand, agent, agency):
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.CREATOR)
    first, _ = brand_token(owner, brand, name="First")
    elsewhere, _ = brand_token(outsider, other_brand, name="Elsewhere")
    second, _ = agency_token(agent, agency, [brand])
    api_token_revoke(actor=owner, token=first)

    assert api_tokens_for_brand(brand=brand) == [second, first]
    assert api_tokens_for_brand(brand=other_brand) == [elsewhere]
    assert api_tokens_for_agency(agency=agency) == [second]
