"""Team management services: invitations by signed, expiring link; role
changes and removals, each audited; a brand always keeps an owner."""

import re
import threading
from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from brands.models import Invitation, Membership, Role
from brands.selectors import brand_role, invitations_pending_for_brand, members_for_brand
from brands.services import (
    INVITATION_LIFETIME,
    agency_access_grant,
    agency_create,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    invitation_token,
    membership_add,
    membership_remove,
    membership_role_change,
)
from tests.conftest import user_make


def url_for(token):
    return f"https://studio.example.com/invitations/{token}/"


def invite(actor, brand, email="new@example.com", role=Role.REVIEWER):
    return invitation_create(actor=actor, brand=brand, email=email, role=role, accept_url_builder=url_for)


def membership_of(user, brand):
    return Membership.objects.get(user=user, brand=brand)


def audits(brand, action):
    return list(AuditEvent.objects.for_brand(brand).filter(action=action).order_by("seq"))


# --- invitations ---------------------------------------------------------------


def test_it_emails_an_invitation_with_its_signed_link_after_commit(
    owner, brand, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invitation = invite(owner, brand, email=" New@Example.com ")
    assert mailoutbox == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    (mail,) = mailoutbox
    assert mail.to == ["new@example.com"]
    assert "Acme" in mail.subject
    assert url_for(invitation_token(invitation=invitation)) in mail.body
    assert invitation.email == "new@example.com" and invitation.role == Role.REVIEWER
    assert invitation.expires_at - invitation.created_at == pytest.approx(INVITATION_LIFETIME, abs=timedelta(seconds=5))
    (event,) = audits(brand, "invitation.created")
    assert event.actor == owner and event.after["email"] == "new@example.com" and event.after["role"] == "reviewer"


def test_it_sends_no_email_for_a_refused_invitation(owner, brand, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ValidationError):
            invite(owner, brand, role="admin")
    assert mailoutbox == []
    assert not Invitation.objects.exists()


def test_it_keeps_nothing_in_the_database_that_makes_a_link(owner, brand):
    invitation = invite(owner, brand)
    token = invitation_token(invitation=invitation)
    row = Invitation.objects.filter(pk=invitation.pk).values().get()
    assert token not in {str(value) for value in row.values()}
    assert signing.loads(token, salt="brands.invitation") == invitation.pk


def test_only_owners_invite(brand, member, viewer):
    for actor in (member, viewer):
        with pytest.raises(PermissionDenied):
            invite(actor, brand)
    assert not Invitation.objects.exists()


def test_outsiders_cannot_invite_to_a_brand(brand, outsider):
    with pytest.raises(PermissionDenied):
        invite(outsider, brand)


@pytest.mark.parametrize("email", ["", "not-an-email", "a@", "@example.com", "two@@example.com"])
def test_it_refuses_an_invitation_to_something_that_is_not_an_email_address(owner, brand, email):
    with pytest.raises(ValidationError) as error:
        invite(owner, brand, email=email)
    assert "email" in error.value.message_dict


def test_it_refuses_an_invitation_with_an_unknown_role(owner, brand):
    with pytest.raises(ValidationError, match="Unknown role"):
        invite(owner, brand, role="admin")


def test_it_refuses_to_invite_the_address_of_an_existing_member(owner, brand, member):
    member.email = "member@example.com"
    member.save()
    with pytest.raises(ValidationError, match="already belongs to a member"):
        invite(owner, brand, email="MEMBER@example.com")


def test_reinviting_an_address_replaces_its_open_invitation(owner, brand):
    first = invite(owner, brand, role=Role.VIEWER)
    second = invite(owner, brand, email="NEW@example.com", role=Role.CREATOR)

    assert invitations_pending_for_brand(brand=brand) == [second]
    first.refresh_from_db()
    assert first.revoked_at is not None
    with pytest.raises(ValidationError, match="replaced by a newer one"):
        invitation_accept(user=user_make("newbie"), token=invitation_token(invitation=first))
    assert audits(brand, "invitation.created")[-1].before == {"replaced_invitation": first.pk}


def test_invitations_to_the_same_address_for_two_brands_are_independent(owner, brand, outsider, other_brand):
    invite(owner, brand)
    invite(outsider, other_brand)
    assert len(invitations_pending_for_brand(brand=brand)) == 1
    assert len(invitations_pending_for_brand(brand=other_brand)) == 1


def test_accepting_an_invitation_makes_the_user_a_member_with_the_invited_role(owner, brand):
    invitation = invite(owner, brand, role=Role.REVIEWER)
    newbie = user_make("newbie")

    membership, joined = invitation_accept(user=newbie, token=invitation_token(invitation=invitation))

    assert joined and membership.role == Role.REVIEWER
    assert brand_role(user=newbie, brand=brand) == Role.REVIEWER
    invitation.refresh_from_db()
    assert invitation.accepted_by == newbie and invitation.accepted_at is not None
    assert invitations_pending_for_brand(brand=brand) == []
    (event,) = audits(brand, "invitation.accepted")
    assert event.actor == newbie
    assert event.after == {"email": "new@example.com", "user": "newbie", "role": "reviewer", "joined": True}


def test_an_invitation_is_accepted_once(owner, brand):
    token = invitation_token(invitation=invite(owner, brand))
    invitation_accept(user=user_make("newbie"), token=token)
    second = user_make("second")
    with pytest.raises(ValidationError, match="already accepted"):
        invitation_accept(user=second, token=token)
    assert brand_role(user=second, brand=brand) is None


def test_an_invitation_never_changes_an_existing_members_role(owner, brand, viewer):
    token = invitation_token(invitation=invite(owner, brand, role=Role.OWNER))

    membership, joined = invitation_accept(user=viewer, token=token)

    assert not joined and membership.role == Role.VIEWER
    assert brand_role(user=viewer, brand=brand) == Role.VIEWER
    assert invitations_pending_for_brand(brand=brand) == []  # used up all the same


def test_an_expired_invitation_cannot_be_accepted(owner, brand):
    invitation = invite(owner, brand)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    newbie = user_make("newbie")
    with pytest.raises(ValidationError, match="expired on"):
        invitation_accept(user=newbie, token=invitation_token(invitation=invitation))
    assert brand_role(user=newbie, brand=brand) is None


def test_a_withdrawn_invitation_cannot_be_accepted(owner, brand):
    invitation = invite(owner, brand)
    invitation_revoke(actor=owner, brand=brand, invitation=invitation)
    newbie = user_make("newbie")
    with pytest.raises(ValidationError, match="withdrawn"):
        invitation_accept(user=newbie, token=invitation_token(invitation=invitation))
    assert brand_role(user=newbie, brand=brand) is None
    (event,) = audits(brand, "invitation.revoked")
    assert event.actor == owner and event.target_id == str(invitation.pk)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: signing.dumps(int(signing.loads(token, salt="brands.invitation")) + 1, salt="other"),
        lambda token: "garbage",
        lambda token: "",
    ],
    ids=["altered-signature", "other-salt", "garbage", "empty"],
)
def test_a_tampered_link_is_refused(owner, brand, tamper):
    token = tamper(invitation_token(invitation=invite(owner, brand)))
    with pytest.raises(ValidationError, match="not valid"):
        invitation_accept(user=user_make("newbie"), token=token)
    assert Membership.objects.filter(brand=brand).count() == 1


def test_a_link_to_a_deleted_invitation_is_refused(owner, brand):
    invitation = invite(owner, brand)
    token = invitation_token(invitation=invitation)
    invitation.delete()
    with pytest.raises(ValidationError, match="not valid"):
        invitation_accept(user=user_make("newbie"), token=token)


def test_only_owners_withdraw_invitations(owner, brand, member):
    invitation = invite(owner, brand)
    with pytest.raises(PermissionDenied):
        invitation_revoke(actor=member, brand=brand, invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_an_accepted_invitation_cannot_be_withdrawn(owner, brand):
    invitation = invite(owner, brand)
    invitation_accept(user=user_make("newbie"), token=invitation_token(invitation=invitation))
    with pytest.raises(ValidationError, match="already accepted"):
        invitation_revoke(actor=owner, brand=brand, invitation=invitation)


def test_an_invitation_of_another_brand_cannot_be_withdrawn_through_this_one(owner, brand, outsider, other_brand):
    theirs = invite(outsider, other_brand)
    with pytest.raises(ValidationError):
        invitation_revoke(actor=owner, brand=brand, invitation=theirs)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- roles and removal ---------------------------------------------------------


def test_owners_change_a_members_role_and_it_is_audited(owner, brand, member):
    membership_role_change(actor=owner, brand=brand, membership=membership_of(member, brand), role=Role.REVIEWER)
    assert brand_role(user=member, brand=brand) == Role.REVIEWER
    (event,) = audits(brand, "membership.role_changed")
    assert event.actor == owner
    assert event.before == {"user": "member", "role": "creator"}
    assert event.after == {"user": "member", "role": "reviewer"}


def test_only_owners_change_roles(brand, member, viewer):
    with pytest.raises(PermissionDenied):
        membership_role_change(actor=member, brand=brand, membership=membership_of(viewer, brand), role=Role.OWNER)
    assert brand_role(user=viewer, brand=brand) == Role.VIEWER


def test_it_refuses_an_unknown_role_on_a_role_change(owner, brand, member):
    with pytest.raises(ValidationError, match="Unknown role"):
        membership_role_change(actor=owner, brand=brand, membership=membership_of(member, brand), role="admin")


def test_owners_remove_a_member_and_it_is_audited(owner, brand, member):
    membership = membership_of(member, brand)
    membership_remove(actor=owner, brand=brand, membership=membership)
    assert brand_role(user=member, brand=brand) is None
    (event,) = audits(brand, "membership.removed")
    assert event.actor == owner and event.target_id == str(membership.pk)
    assert event.before == {"user": "member", "role": "creator"}


def test_only_owners_remove_members(brand, member, viewer):
    with pytest.raises(PermissionDenied):
        membership_remove(actor=member, brand=brand, membership=membership_of(viewer, brand))
    assert brand_role(user=viewer, brand=brand) == Role.VIEWER


def test_a_membership_of_another_brand_cannot_be_changed_through_this_one(owner, brand, outsider, other_brand):
    theirs = membership_of(outsider, other_brand)
    with pytest.raises(ValidationError, match="no longer a member"):
        membership_remove(actor=owner, brand=brand, membership=theirs)
    with pytest.raises(ValidationError, match="no longer a member"):
        membership_role_change(actor=owner, brand=brand, membership=theirs, role=Role.VIEWER)
    assert brand_role(user=outsider, brand=other_brand) == Role.OWNER


def test_the_last_owner_cannot_be_removed(owner, brand, member):
    with pytest.raises(ValidationError, match="last owner") as error:
        membership_remove(actor=owner, brand=brand, membership=membership_of(owner, brand))
    assert "role" in error.value.message_dict
    assert brand_role(user=owner, brand=brand) == Role.OWNER
    assert audits(brand, "membership.removed") == []


@pytest.mark.parametrize("role", [Role.CREATOR, Role.REVIEWER, Role.VIEWER])
def test_the_last_owner_cannot_be_demoted(owner, brand, role):
    with pytest.raises(ValidationError, match="last owner"):
        membership_role_change(actor=owner, brand=brand, membership=membership_of(owner, brand), role=role)
    assert brand_role(user=owner, brand=brand) == Role.OWNER


def test_the_last_owner_cannot_be_demoted_through_membership_add_either(owner, brand):
    with pytest.raises(ValidationError, match="last owner"):
        membership_add(actor=owner, brand=brand, user=owner, role=Role.VIEWER)
    assert brand_role(user=owner, brand=brand) == Role.OWNER


def test_an_owner_may_step_down_while_another_owner_remains(owner, brand, member):
    membership_role_change(actor=owner, brand=brand, membership=membership_of(member, brand), role=Role.OWNER)
    membership_role_change(actor=owner, brand=brand, membership=membership_of(owner, brand), role=Role.VIEWER)
    assert brand_role(user=owner, brand=brand) == Role.VIEWER
    # Now `member` is the last owner.
    with pytest.raises(ValidationError, match="last owner"):
        membership_remove(actor=member, brand=brand, membership=membership_of(member, brand))


def test_an_agency_owner_does_not_count_as_an_owner_the_brand_keeps(owner, brand):
    agency = agency_create(actor=None, name="Agency", slug="agency", members=[user_make("agent")])
    agency_access_grant(actor=owner, brand=brand, agency=agency, role=Role.OWNER)
    with pytest.raises(ValidationError, match="last owner"):
        membership_remove(actor=owner, brand=brand, membership=membership_of(owner, brand))


def test_it_lists_members_strongest_role_first(owner, brand, member, viewer):
    assert [(m.user.username, m.role) for m in members_for_brand(brand=brand)] == [
        ("owner", "owner"),
        ("member", "creator"),
        ("viewer", "viewer"),
    ]


# --- the last owner under concurrency (PostgreSQL) ----------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(owner, brand):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: DATABASE_URL=postgres://...")
    second = user_make("second")
    membership_add(actor=owner, brand=brand, user=second, role=Role.OWNER)
    pairs = [(owner, membership_of(second, brand)), (second, membership_of(owner, brand))]
    barrier = threading.Barrier(2, timeout=30)
    outcomes = [None, None]

    def demote(index):
        actor, membership = pairs[index]
        try:
            barrier.wait()
            membership_role_change(actor=actor, brand=brand, membership=membership, role=Role.VIEWER)
            outcomes[index] = "demoted"
        except (ValidationError, PermissionDenied) as exc:
            outcomes[index] = re.sub(r"\s+", " ", str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)

    # The loser is refused: either as the last owner, or because the winner
    # demoted it first and it is no longer an owner allowed to change roles.
    assert outcomes.count("demoted") == 1, outcomes
    assert Membership.objects.filter(brand=brand, role=Role.OWNER).count() == 1
