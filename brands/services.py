import re
from datetime import timedelta

from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.services import audit_record

from .models import (
    API_SCOPES,
    Agency,
    AgencyAccess,
    ApiToken,
    Brand,
    Invitation,
    LayerGroupPermission,
    Membership,
    Role,
)
from .selectors import brand_role, brand_role_require
from .tokens import token_generate, token_hash

# Layer-group names as generator models define them; the dashboard offers
# only the registered models' names, this bounds what any caller may store.
LAYER_GROUP_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")
LAYER_GROUPS_MAX = 32
LIMITABLE_ROLES = [role for role in Role.values if role != Role.OWNER]
INVITATION_LIFETIME = timedelta(days=7)
# Namespaces the signature: a token signed for anything else in the project
# (sessions, password resets) is not a valid invitation token.
INVITATION_SALT = "brands.invitation"


@transaction.atomic
def brand_create(*, actor, name, slug):
    """Create a brand; its creator becomes its first owner."""
    if Brand.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A brand with the slug {slug!r} already exists."})
    brand = Brand(name=name, slug=slug)
    brand.full_clean()
    brand.save()
    Membership.objects.create(brand=brand, user=actor, role=Role.OWNER)
    audit_record(actor=actor, brand=brand, action="brand.created", target=brand, after={"name": name, "slug": slug})
    return brand


def _role_check(role):
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."})


def _membership_lock(*, brand, membership):
    """(the membership as it is now, the ids of the brand's owner memberships), all locked.

    The owners are locked first, in id order, then the member: every change of
    a membership takes its locks in that order, so two changes never wait on
    each other, and two owners demoting each other at once run one after the
    other, the second seeing a single owner left. The membership is read
    again because it may have changed or gone since the caller read it."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(brand=brand, role=Role.OWNER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=membership.pk, brand=brand)
        .first()
    )
    if locked is None:
        raise ValidationError(f"{membership.user.get_username()} is no longer a member of {brand.name}.")
    return locked, owners


def _owner_keep(*, brand, membership, owners, new_role=None):
    """Refuse to demote (new_role) or remove (None) the brand's last owner.

    `owners` come locked from _membership_lock. Only direct memberships count:
    an agency's access is granted and withdrawn outside the brand's team."""
    if membership.role != Role.OWNER or new_role == Role.OWNER or owners != [membership.pk]:
        return
    what = "removed" if new_role is None else "made " + Role(new_role).label.lower()
    raise ValidationError(
        {
            "role": f"{membership.user.get_username()} is the last owner of {brand.name} and cannot be {what}; "
            "make someone else an owner first."
        }
    )


@transaction.atomic
def membership_add(*, actor, brand, user, role):
    """Give `user` a role on the brand (or change it). Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    _role_check(role)
    membership = Membership.objects.filter(brand=brand, user=user).first()
    before = {"user": user.get_username(), "role": membership.role} if membership else None
    if membership is None:
        membership = Membership.objects.create(brand=brand, user=user, role=role)
    else:
        membership, owners = _membership_lock(brand=brand, membership=membership)
        _owner_keep(brand=brand, membership=membership, owners=owners, new_role=role)
        membership.role = role
        membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        brand=brand,
        action="membership.set",
        target=membership,
        before=before,
        after={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def membership_role_change(*, actor, brand, membership, role):
    """Change a member's role. Owners only; the last owner keeps the role."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    _role_check(role)
    membership, owners = _membership_lock(brand=brand, membership=membership)
    _owner_keep(brand=brand, membership=membership, owners=owners, new_role=role)
    before = {"user": membership.user.get_username(), "role": membership.role}
    if membership.role == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        brand=brand,
        action="membership.role_changed",
        target=membership,
        before=before,
        after={"user": membership.user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor, brand, membership):
    """Take a member off the brand. Owners only; the last owner stays.
    Access through an agency is not touched."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    membership, owners = _membership_lock(brand=brand, membership=membership)
    _owner_keep(brand=brand, membership=membership, owners=owners)
    # Recorded before the delete, which clears the primary key the event names.
    audit_record(
        actor=actor,
        brand=brand,
        action="membership.removed",
        target=membership,
        before={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()


def invitation_token(*, invitation):
    """The token in an invitation's link: its id, signed with SECRET_KEY.

    Nothing secret is stored, so the database alone cannot make a link; expiry,
    revocation and acceptance live on the row, which every use reads."""
    return signing.dumps(invitation.pk, salt=INVITATION_SALT)


def _email_normalize(email):
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"{email!r} is not an email address."}) from None
    # One address, one open invitation: compare them case-insensitively.
    return email.lower()


def _invitation_email_send(*, invitation, url):
    brand, inviter = invitation.brand, invitation.invited_by
    expires = timezone.localtime(invitation.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    send_mail(
        subject=f"You are invited to {brand.name} on Persona Studio",
        message=(
            f"{inviter.get_username() if inviter else 'An owner'} invites you to join {brand.name} "
            f"on Persona Studio as {Role(invitation.role).label.lower()}.\n\n"
            f"Accept the invitation here (you can create an account on that page):\n{url}\n\n"
            f"The link works once and until {expires}. If you did not expect it, ignore this email.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_create(*, actor, brand, email, role, accept_url_builder):
    """Invite `email` to the brand as `role`. Owners only.

    `accept_url_builder(token)` gives the absolute link for the email (the
    caller knows its own URLs and host). An open invitation to the same
    address is revoked and replaced, so only the newest link works. The email
    leaves after commit, so a rolled-back invitation sends nothing."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    email = _email_normalize(email)
    _role_check(role)
    if Membership.objects.filter(brand=brand, user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already belongs to a member of {brand.name}."})
    now = timezone.now()
    replaced = Invitation.objects.select_for_update().open().filter(brand=brand, email=email).first()
    if replaced is not None:
        replaced.revoked_at = now
        replaced.save(update_fields=["revoked_at"])
    invitation = Invitation.objects.create(
        brand=brand, email=email, role=role, invited_by=actor, expires_at=now + INVITATION_LIFETIME
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="invitation.created",
        target=invitation,
        before={"replaced_invitation": replaced.pk} if replaced else None,
        after={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
    )
    url = accept_url_builder(invitation_token(invitation=invitation))
    # robust: a mail server that is down is logged, not turned into an error
    # page for an invitation that is already saved (the owner can invite again).
    transaction.on_commit(lambda: _invitation_email_send(invitation=invitation, url=url), robust=True)
    return invitation


@transaction.atomic
def invitation_revoke(*, actor, brand, invitation):
    """Withdraw an open invitation: its link stops working. Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk, brand=brand).first()
    if locked is None or locked.accepted_at is not None:
        raise ValidationError(f"The invitation to {invitation.email} was already accepted; remove the member instead.")
    if locked.revoked_at is not None:
        raise ValidationError(f"The invitation to {invitation.email} was already withdrawn.")
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        brand=brand,
        action="invitation.revoked",
        target=locked,
        after={"email": locked.email, "role": locked.role},
    )
    return locked


INVALID_LINK = "This invitation link is not valid: it may be incomplete or altered. Copy the whole link from the email."


def invitation_from_token(*, token, lock=False):
    """The invitation a token names, if it can still be accepted; otherwise a
    ValidationError that says why, in words for the invitee, with a code:
    invalid (altered or unknown), used, withdrawn or expired."""
    try:
        invitation_id = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        raise ValidationError(INVALID_LINK, code="invalid") from None
    invitations = Invitation.objects.select_related("brand", "invited_by")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(pk=invitation_id).first() if isinstance(invitation_id, int) else None
    if invitation is None:
        raise ValidationError(INVALID_LINK, code="invalid")
    if invitation.accepted_at is not None:
        raise ValidationError(f"This invitation to {invitation.brand.name} was already accepted.", code="used")
    if invitation.revoked_at is not None:
        raise ValidationError(
            f"This invitation to {invitation.brand.name} was withdrawn or replaced by a newer one; "
            "use the link in the latest email, or ask an owner of the brand to invite you again.",
            code="withdrawn",
        )
    if invitation.is_expired():
        expired = timezone.localtime(invitation.expires_at).strftime("%Y-%m-%d")
        raise ValidationError(
            f"This invitation to {invitation.brand.name} expired on {expired}; "
            "ask an owner of the brand to invite you again.",
            code="expired",
        )
    return invitation


@transaction.atomic
def invitation_accept(*, user, token):
    """Accept an invitation as `user`: they become a member with the invited
    role. A user who already is a member keeps their role (an invitation never
    demotes anyone); the invitation is used up either way.

    Returns (membership, joined): joined is False for an existing member.
    The invitation row is locked, so a link is accepted once."""
    invitation = invitation_from_token(token=token, lock=True)
    brand = invitation.brand
    membership = Membership.objects.filter(brand=brand, user=user).first()
    joined = membership is None
    if joined:
        membership = Membership.objects.create(brand=brand, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=user,
        brand=brand,
        action="invitation.accepted",
        target=invitation,
        after={
            "email": invitation.email,
            "user": user.get_username(),
            "role": membership.role,
            "joined": joined,
        },
    )
    return membership, joined


@transaction.atomic
def agency_create(*, actor, name, slug, members=()):
    """Create an agency (a firm acting for brands). Operators (staff) only;
    None for the shell and commands."""
    if actor is not None and not actor.is_staff:
        raise PermissionDenied("Only operators (staff) may create agencies.")
    if Agency.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"An agency with the slug {slug!r} already exists."})
    agency = Agency(name=name, slug=slug)
    agency.full_clean()
    agency.save()
    agency.members.set(members)
    audit_record(
        actor=actor,
        brand=None,
        action="agency.created",
        target=agency,
        after={"name": name, "slug": slug, "members": sorted(m.get_username() for m in members)},
    )
    return agency


@transaction.atomic
def agency_access_grant(*, actor, brand, agency, role):
    """Give every member of the agency a role on the brand. Brand owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    _role_check(role)
    access, _ = AgencyAccess.objects.update_or_create(agency=agency, brand=brand, defaults={"role": role})
    audit_record(
        actor=actor,
        brand=brand,
        action="agency_access.granted",
        target=access,
        after={"agency": agency.slug, "role": role},
    )
    return access


@transaction.atomic
def layer_group_permission_set(*, actor, brand, role, layer_groups):
    """Limit `role` to changing `layer_groups` (names) on the brand's personas;
    None lifts the limit. Owners only; owners themselves are never limited."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    if role not in Role.values or role == Role.OWNER:
        raise ValidationError({"role": f"Layer groups can be limited for {', '.join(LIMITABLE_ROLES)}; got {role!r}."})
    current = LayerGroupPermission.objects.filter(brand=brand, role=role).first()
    before = {"role": role, "layer_groups": current.layer_groups} if current else None
    if layer_groups is None:
        if current:
            current.delete()
        after = None
    else:
        names = sorted(set(layer_groups))
        well_formed = all(isinstance(n, str) and LAYER_GROUP_NAME.match(n) for n in names)
        if len(names) > LAYER_GROUPS_MAX or not well_formed:
            raise ValidationError(
                {"layer_groups": f"Give at most {LAYER_GROUPS_MAX} layer-group names, each a short name like 'fine'."}
            )
        current, _ = LayerGroupPermission.objects.update_or_create(
            brand=brand, role=role, defaults={"layer_groups": names}
        )
        after = {"role": role, "layer_groups": names}
    audit_record(
        actor=actor, brand=brand, action="layer_group_permission.set", target=brand, before=before, after=after
    )
    return current


# --- API tokens -------------------------------------------------------------------

API_TOKEN_LIFETIME = timedelta(days=90)
API_TOKEN_LIFETIME_MAX = timedelta(days=365)
API_TOKEN_NAME_MAX = ApiToken._meta.get_field("name").max_length


def _api_token_scopes_check(scopes):
    if isinstance(scopes, str) or not all(isinstance(scope, str) for scope in scopes or ()):
        raise ValidationError({"scopes": "Give the scopes as a list of names such as 'personas:read'."})
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}; choose from {', '.join(API_SCOPES)}."})
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    # Stored in API_SCOPES order, once each, whatever order they came in.
    return [scope for scope in API_SCOPES if scope in set(scopes)]


def _api_token_expiry_check(expires_at, now):
    if expires_at is None:
        return now + API_TOKEN_LIFETIME
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": "Give the expiry with its time zone."})
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at > now + API_TOKEN_LIFETIME_MAX:
        raise ValidationError({"expires_at": f"A token lives at most {API_TOKEN_LIFETIME_MAX.days} days."})
    return expires_at


def _api_token_brands_check(*, actor, brands, brand, agency):
    """The brands the new token may act for, after the permission checks."""
    if (brand is None) == (agency is None):
        raise ValidationError("A token belongs either to a brand or to an agency, and to exactly one.")
    brands = list({b.pk: b for b in brands or ()}.values())
    if brand is not None:
        brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
        if not brands:
            raise ValidationError({"brands": "Choose the brand the token acts for."})
        if [b.pk for b in brands] != [brand.pk]:
            raise ValidationError({"brands": f"A token of {brand.name} acts for {brand.name} only."})
        return [brand]
    if actor is None or not agency.members.filter(pk=actor.pk).exists():
        raise PermissionDenied(f"{actor} is not a member of the agency {agency.slug}.")
    if not brands:
        raise ValidationError({"brands": "Choose at least one brand the token acts for."})
    allowed = set(AgencyAccess.objects.filter(agency=agency, brand__in=brands).values_list("brand_id", flat=True))
    refused = sorted(b.slug for b in brands if b.pk not in allowed)
    if refused:
        raise ValidationError({"brands": f"{agency.name} has no access to {', '.join(refused)}."})
    return sorted(brands, key=lambda b: b.slug)


def _api_token_audit(*, actor, token, brands, action, after):
    """One row per brand the token acts for, naming only that brand (an agency
    token's other clients stay out of each brand's log), and for an agency
    token one more, without a brand, naming them all."""
    for brand in brands:
        audit_record(actor=actor, brand=brand, action=action, target=token, after={**after, "brands": [brand.slug]})
    if token.agency_id is not None:
        audit_record(
            actor=actor, brand=None, action=action, target=token, after={**after, "brands": [b.slug for b in brands]}
        )


# Innermost, so that error reports hide `raw` in this function's own frame.
@transaction.atomic
@sensitive_variables("raw")
def api_token_create(*, actor, name, scopes, brands, expires_at=None, brand=None, agency=None):
    """A new API token and its raw form, which exists only in this return
    value: show it to the caller once; only its hash is stored.

    A brand token (`brand`): actor is an owner of it, `brands` is [brand].
    An agency token (`agency`): actor is a member of it, `brands` are brands
    the agency has access to. expires_at: default in 90 days, at most in a
    year. The audit rows name the token by key_id, never its secret."""
    now = timezone.now()
    brands = _api_token_brands_check(actor=actor, brands=brands, brand=brand, agency=agency)
    name = (name or "").strip()
    if not name or len(name) > API_TOKEN_NAME_MAX:
        raise ValidationError({"name": f"Name the token (at most {API_TOKEN_NAME_MAX} characters)."})
    scopes = _api_token_scopes_check(scopes)
    expires_at = _api_token_expiry_check(expires_at, now)
    key_id, raw = token_generate()
    while ApiToken.objects.filter(key_id=key_id).exists():  # 48 random bits: practically never
        key_id, raw = token_generate()
    token = ApiToken.objects.create(
        name=name,
        brand=brand,
        agency=agency,
        scopes=scopes,
        key_id=key_id,
        secret_hash=token_hash(raw),
        created_by=actor,
        expires_at=expires_at,
    )
    token.brands.set(brands)
    _api_token_audit(
        actor=actor,
        token=token,
        brands=brands,
        action="api_token.created",
        after={
            "key_id": key_id,
            "name": name,
            "scopes": scopes,
            "agency": agency.slug if agency else None,
            "expires_at": expires_at.isoformat(),
        },
    )
    return token, raw


def _api_token_may_revoke(*, actor, token):
    if actor is None or not actor.is_authenticated:
        return False
    if token.created_by_id == actor.pk:
        return True
    if token.agency_id is not None:
        return token.agency.members.filter(pk=actor.pk).exists()
    return brand_role(user=actor, brand=token.brand) == Role.OWNER


@transaction.atomic
def api_token_revoke(*, actor, token):
    """Revoke a token: it stops authenticating at once. Owners of its brand,
    members of its agency, or its creator. Revoking a revoked token changes
    nothing and records nothing."""
    if not _api_token_may_revoke(actor=actor, token=token):
        raise PermissionDenied(f"{actor} may not revoke the API token {token.display}.")
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        _api_token_audit(
            actor=actor,
            token=locked,
            brands=list(locked.brands.order_by("slug")),
            action="api_token.revoked",
            after={"key_id": locked.key_id, "name": locked.name, "agency": token.agency.slug if token.agency else None},
        )
    token.revoked_at = locked.revoked_at
    return token


# --- brand settings ---------------------------------------------------------------

IDENTITY_THRESHOLD_RANGE = (0.0, 1.0)


def brand_identity_threshold_set(*, actor, brand, identity_threshold):
    """Set the identity consistency below which the brand's images are flagged
    (campaign boards, asset pages, the approval queue). Owners only; 0 to 1."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    low, high = IDENTITY_THRESHOLD_RANGE
    try:
        value = float(identity_threshold)
    except (TypeError, ValueError):
        value = None
    if value is None or not low <= value <= high:
        raise ValidationError(
            {"identity_threshold": f"The threshold is a number from {low:g} to {high:g}, got {identity_threshold!r}."}
        )
    with transaction.atomic():
        locked = Brand.objects.select_for_update().get(pk=brand.pk)
        before = locked.identity_threshold
        if before != value:
            locked.identity_threshold = value
            locked.save(update_fields=["identity_threshold"])
            audit_record(
                actor=actor, brand=locked, action="brand.identity_threshold_set", target=locked,
                before={"identity_threshold": before}, after={"identity_threshold": value},
            )  # fmt: skip
    brand.identity_threshold = value
    return locked
