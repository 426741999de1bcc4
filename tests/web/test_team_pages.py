"""The team page and the invitation link, through the test client."""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from brands.models import Invitation, Membership, Role
from brands.selectors import brand_role
from brands.services import invitation_create, invitation_token, membership_add
from tests.conftest import PASSWORD, user_make

NEW_PASSWORD = "a-long-unusual-passphrase-42"


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def page(response):
    return response.content.decode()


def membership_of(user, brand):
    return Membership.objects.get(user=user, brand=brand)


@pytest.fixture
def invitation(owner, brand):
    return invitation_create(
        actor=owner, brand=brand, email="new@example.com", role=Role.REVIEWER, accept_url_builder=lambda t: t
    )


@pytest.fixture
def team_pages(brand, member, invitation):
    """(method, url) of every team page and action, by URL name."""
    membership = membership_of(member, brand)
    pages = {
        "team": ("get", [brand.slug]),
        "team-invite": ("post", [brand.slug]),
        "team-invitation-revoke": ("post", [brand.slug, invitation.pk]),
        "team-member-role": ("post", [brand.slug, membership.pk]),
        "team-member-remove": ("post", [brand.slug, membership.pk]),
    }
    return {name: (method, reverse(name, args=args)) for name, (method, args) in pages.items()}


def accept_url(invitation):
    return reverse("invitation-accept", args=[invitation_token(invitation=invitation)])


# --- the whole path ------------------------------------------------------------


def test_an_owner_invites_by_email_and_the_invitee_signs_up_and_becomes_a_member(
    client, owner, brand, mailoutbox, django_capture_on_commit_callbacks
):
    login(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("team-invite", args=[brand.slug]), {"email": "Newbie@Example.com", "role": "reviewer"}, follow=True
        )
    assert "Invited newbie@example.com as reviewer" in page(response)
    assert "newbie@example.com" in page(response)  # under open invitations

    (mail,) = mailoutbox
    assert mail.to == ["newbie@example.com"]
    (link,) = re.findall(r"http://testserver/invitations/\S+/", mail.body)
    client.logout()

    landing = client.get(link)
    assert landing.status_code == 200
    assert "Join Acme" in page(landing) and "Log in to accept" in page(landing)
    assert "?" + urlencode({"next": link.removeprefix("http://testserver")}) in page(landing)

    joined = client.post(
        link, {"username": "newbie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True
    )
    assert joined.redirect_chain[-1][0] == reverse("brand-dashboard", args=[brand.slug])
    assert "Welcome to Acme: you are reviewer." in page(joined)
    newbie = joined.context["user"]
    assert newbie.get_username() == "newbie" and newbie.email == "newbie@example.com"
    assert brand_role(user=newbie, brand=brand) == Role.REVIEWER

    again = client.get(link)
    assert again.status_code == 410 and "already accepted" in page(again)


def test_a_signed_in_invitee_accepts_with_one_post(client, brand, invitation, viewer, outsider):
    login(client, outsider)
    url = accept_url(invitation)
    landing = client.get(url)
    assert "Accept as outsider" in page(landing) and "password1" not in page(landing)

    response = client.post(url)

    assert response.status_code == 302 and response["Location"] == reverse("brand-dashboard", args=[brand.slug])
    assert brand_role(user=outsider, brand=brand) == Role.REVIEWER
    assert AuditEvent.objects.for_brand(brand).filter(action="invitation.accepted", actor=outsider).exists()


def test_an_invitee_who_logs_in_comes_back_to_the_invitation(client, owner, brand, invitation, outsider):
    url = accept_url(invitation)
    response = client.post(
        reverse("login") + "?next=" + url, {"username": "outsider", "password": PASSWORD, "next": url}
    )
    assert response.status_code == 302 and response["Location"] == url


def test_an_existing_member_who_accepts_keeps_their_role(client, brand, invitation, viewer):
    login(client, viewer)
    response = client.post(accept_url(invitation), follow=True)
    assert "You already are viewer of Acme; your role stays." in page(response)
    assert brand_role(user=viewer, brand=brand) == Role.VIEWER


def test_a_sign_up_that_fails_shows_why_and_creates_no_account(client, brand, invitation, member):
    response = client.post(
        accept_url(invitation), {"username": "member", "password1": "short", "password2": "different"}
    )
    assert response.status_code == 200
    assert "A user with that username already exists." in page(response)
    assert not Membership.objects.filter(brand=brand, role=Role.REVIEWER).exists()


# --- broken links --------------------------------------------------------------


def test_an_expired_link_gives_a_clear_error_page(client, brand, invitation, outsider):
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    url = accept_url(invitation)
    for user in (None, outsider):
        if user:
            login(client, user)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 410, (user, method)
            assert "This invitation cannot be used" in page(response)
            assert "expired on" in page(response) and "ask an owner of the brand" in page(response)
    assert brand_role(user=outsider, brand=brand) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("xx" if not token.endswith("xx") else "yy"),
        lambda token: "Mg" + token[token.index(":") :],  # another id under the same signature
        lambda token: "not-a-token",
        lambda token: "%00%ff",
    ],
    ids=["altered-signature", "altered-id", "garbage", "odd-bytes"],
)
def test_a_tampered_link_gives_a_clear_error_page(client, brand, invitation, outsider, tamper):
    url = reverse("invitation-accept", args=[tamper(invitation_token(invitation=invitation))])
    login(client, outsider)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code == 400, method
        assert "This invitation link is not valid" in page(response)
    assert brand_role(user=outsider, brand=brand) is None


def test_a_withdrawn_link_gives_a_clear_error_page(client, owner, brand, invitation):
    login(client, owner)
    response = client.post(reverse("team-invitation-revoke", args=[brand.slug, invitation.pk]), follow=True)
    assert "Withdrew the invitation to new@example.com" in page(response)
    client.logout()
    refused = client.get(accept_url(invitation))
    assert refused.status_code == 410 and "withdrawn" in page(refused)


# --- the team page -------------------------------------------------------------


def test_every_member_sees_the_team_and_only_owners_manage_it(client, owner, brand, member, viewer, invitation):
    url = reverse("team", args=[brand.slug])
    login(client, viewer)
    response = client.get(url)
    assert response.status_code == 200
    for name in ("owner", "member", "viewer"):
        assert name in page(response)
    for owner_only in ("Send invitation", "Change role", "Remove", "new@example.com", "Withdraw"):
        assert owner_only not in page(response)

    login(client, owner)
    response = client.get(url)
    for owner_only in ("Send invitation", "Change role", "Remove", "new@example.com", "Withdraw"):
        assert owner_only in page(response)


def test_the_brand_page_links_to_the_team(client, owner, brand):
    login(client, owner)
    assert reverse("team", args=[brand.slug]) in page(client.get(reverse("brand-dashboard", args=[brand.slug])))


def test_an_owner_changes_a_members_role(client, owner, brand, member):
    login(client, owner)
    url = reverse("team-member-role", args=[brand.slug, membership_of(member, brand).pk])
    response = client.post(url, {"role": "reviewer"}, follow=True)
    assert "member is now reviewer." in page(response)
    assert brand_role(user=member, brand=brand) == Role.REVIEWER


def test_an_owner_removes_a_member(client, owner, brand, member):
    login(client, owner)
    response = client.post(reverse("team-member-remove", args=[brand.slug, membership_of(member, brand).pk]))
    assert response.status_code == 302
    assert brand_role(user=member, brand=brand) is None
    login(client, member)
    assert client.get(reverse("team", args=[brand.slug])).status_code == 404


def test_the_last_owner_is_refused_with_a_visible_form_error(client, owner, brand, member):
    login(client, owner)
    mine = membership_of(owner, brand)
    for name, data in (("team-member-role", {"role": "viewer"}), ("team-member-remove", {})):
        response = client.post(reverse(name, args=[brand.slug, mine.pk]), data)
        assert response.status_code == 200, name
        assert 'class="errorlist' in page(response)
        assert "owner is the last owner of Acme" in page(response), name
        assert '<option value="owner" selected>' in page(response), name  # the role it keeps
    assert brand_role(user=owner, brand=brand) == Role.OWNER


def test_an_invitation_to_a_bad_address_shows_the_error_in_the_form(client, owner, brand):
    login(client, owner)
    response = client.post(reverse("team-invite", args=[brand.slug]), {"email": "nope", "role": "reviewer"})
    assert response.status_code == 200
    assert "Enter a valid email address." in page(response)
    assert not Invitation.objects.exists()


def test_an_owner_who_leaves_goes_home(client, owner, brand, member):
    login(client, owner)
    client.post(reverse("team-member-role", args=[brand.slug, membership_of(member, brand).pk]), {"role": "owner"})
    response = client.post(reverse("team-member-remove", args=[brand.slug, membership_of(owner, brand).pk]))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert brand_role(user=owner, brand=brand) is None


@pytest.mark.parametrize("role", [Role.CREATOR, Role.REVIEWER, Role.VIEWER])
def test_members_below_owner_get_403_on_every_owner_action(client, owner, brand, team_pages, role):
    someone = user_make("someone")
    membership_add(actor=owner, brand=brand, user=someone, role=role)
    login(client, someone)
    for name, (method, url) in team_pages.items():
        if method == "post":
            assert client.post(url, {"role": "owner", "email": "x@example.com"}).status_code == 403, name
    assert brand_role(user=someone, brand=brand) == role
    assert Invitation.objects.open().count() == 1


def test_outsiders_get_404_on_every_team_page_and_action(client, outsider, other_brand, team_pages, brand, member):
    login(client, outsider)
    for name, (method, url) in team_pages.items():
        assert getattr(client, method)(url).status_code == 404, name
        assert client.post(url, {"role": "owner", "email": "x@example.com"}).status_code in (404, 405), name
    assert brand_role(user=outsider, brand=brand) is None
    assert brand_role(user=member, brand=brand) == Role.CREATOR


def test_ids_of_another_brand_are_404_through_this_one(client, owner, brand, outsider, other_brand):
    theirs = invitation_create(
        actor=outsider, brand=other_brand, email="x@example.com", role=Role.VIEWER, accept_url_builder=str
    )
    login(client, owner)
    their_member = membership_of(outsider, other_brand)
    assert (
        client.post(reverse("team-member-role", args=[brand.slug, their_member.pk]), {"role": "viewer"}).status_code
        == 404
    )
    assert client.post(reverse("team-member-remove", args=[brand.slug, their_member.pk])).status_code == 404
    assert client.post(reverse("team-invitation-revoke", args=[brand.slug, theirs.pk])).status_code == 404
    assert brand_role(user=outsider, brand=other_brand) == Role.OWNER


def test_anonymous_visitors_are_sent_to_log_in_from_team_pages(client, team_pages):
    for name, (method, url) in team_pages.items():
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


def test_operators_see_invitations_in_the_admin_read_only(client, invitation):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    login(client, root)
    listing = client.get(reverse("admin:brands_invitation_changelist"))
    assert listing.status_code == 200 and "new@example.com" in page(listing)
    detail = client.get(reverse("admin:brands_invitation_change", args=[invitation.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in page(detail)
