import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from audit.models import AuditEvent
from brands.models import LayerGroupPermission, Role
from brands.selectors import brand_access_get, brand_for_member, brand_role, brands_for_user
from brands.services import (
    agency_access_grant,
    agency_create,
    brand_create,
    layer_group_permission_set,
    membership_add,
)
from tests.conftest import user_make


def test_it_makes_the_creator_of_a_brand_its_owner(owner, brand):
    assert brand_role(user=owner, brand=brand) == Role.OWNER


def test_it_gives_members_their_role(member, viewer, brand):
    assert brand_access_get(user=member, brand_slug="acme").role == Role.CREATOR
    assert brand_access_get(user=viewer, brand_slug="acme").role == Role.VIEWER


def test_it_hides_a_brand_from_outsiders(outsider, brand):
    with pytest.raises(Http404):
        brand_for_member(user=outsider, brand_slug="acme")


def test_it_hides_brands_that_do_not_exist_the_same_way(owner):
    with pytest.raises(Http404):
        brand_for_member(user=owner, brand_slug="nope")


def test_it_lists_only_the_users_brands(owner, brand, outsider, other_brand):
    assert [a.brand.slug for a in brands_for_user(user=owner)] == ["acme"]
    assert [a.brand.slug for a in brands_for_user(user=outsider)] == ["other"]


def test_it_reaches_several_brands_through_an_agency(owner, brand, outsider, other_brand):
    agent = user_make("agent")
    agency = agency_create(actor=None, name="Agency", slug="agency", members=[agent])
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.REVIEWER)
    agency_access_grant(actor=outsider, brand=other_brand, agency=agency, role=Role.CREATOR)
    assert [(a.brand.slug, a.role) for a in brands_for_user(user=agent)] == [("acme", "reviewer"), ("other", "creator")]


def test_it_takes_the_strongest_of_direct_and_agency_roles(owner, brand, viewer):
    agency = agency_create(actor=None, name="Agency", slug="agency", members=[viewer])
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.CREATOR)
    assert brand_role(user=viewer, brand=brand) == Role.CREATOR


def test_it_lets_only_owners_change_members(brand, member, outsider):
    with pytest.raises(PermissionDenied):
        membership_add(actor=member, brand=brand, user=outsider, role=Role.OWNER)
    assert brand_role(user=outsider, brand=brand) is None


def test_it_audits_membership_changes(owner, brand, member):
    membership_add(actor=owner, brand=brand, user=member, role=Role.REVIEWER)
    event = AuditEvent.objects.for_brand(brand).filter(action="membership.set").first()
    assert event.before == {"user": "member", "role": "creator"}
    assert event.after == {"user": "member", "role": "reviewer"}


def test_it_refuses_unknown_roles(owner, brand, outsider):
    with pytest.raises(ValidationError, match="Unknown role"):
        membership_add(actor=owner, brand=brand, user=outsider, role="admin")


def test_it_refuses_a_taken_brand_slug(owner, brand):
    with pytest.raises(ValidationError, match="already exists"):
        brand_create(actor=owner, name="Acme 2", slug="acme")


def test_only_operators_create_agencies(owner):
    with pytest.raises(PermissionDenied):
        agency_create(actor=owner, name="Rogue", slug="rogue")
    operator = user_make("operator")
    operator.is_staff = True
    operator.save()
    assert agency_create(actor=operator, name="Agency", slug="agency").slug == "agency"
    assert AuditEvent.objects.filter(action="agency.created", actor=operator).count() == 1


@pytest.mark.parametrize("names", [["x" * 1_000_000], ["fine", "../etc"], [f"g{i}" for i in range(33)]])
def test_it_refuses_layer_group_names_that_are_not_short_names(owner, brand, names):
    with pytest.raises(ValidationError) as error:
        layer_group_permission_set(actor=owner, brand=brand, role=Role.CREATOR, layer_groups=names)
    assert "layer_groups" in error.value.message_dict
    assert not LayerGroupPermission.objects.filter(brand=brand).exists()
