"""Brand-scoped reads. A brand is only ever reached through a member."""

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .models import ROLE_RANK, AgencyAccess, ApiToken, Brand, Invitation, LayerGroupPermission, Membership, Role
from .tokens import token_key_id, token_matches


@dataclass(frozen=True)
class BrandAccess:
    brand: Brand
    role: str


def brand_role(*, user, brand):
    """The user's strongest role on the brand, direct or through an agency; None for outsiders."""
    if not user.is_authenticated:
        return None
    roles = list(Membership.objects.filter(user=user, brand=brand).values_list("role", flat=True))
    roles += AgencyAccess.objects.filter(agency__members=user, brand=brand).values_list("role", flat=True)
    return max(roles, key=ROLE_RANK.__getitem__, default=None)


def brand_access_get(*, user, brand_slug, roles=None):
    """The brand and the user's role on it; Http404 for outsiders, so that a
    brand's existence is not revealed to people outside it, and
    PermissionDenied for members whose role is not one of `roles` (if given)."""
    brand = Brand.objects.filter(slug=brand_slug).first()
    role = brand_role(user=user, brand=brand) if brand is not None else None
    if role is None:
        raise Http404("No such brand")
    if roles is not None and role not in roles:
        raise PermissionDenied
    return BrandAccess(brand=brand, role=role)


def brand_for_member(*, user, brand_slug):
    return brand_access_get(user=user, brand_slug=brand_slug).brand


def brands_for_user(*, user):
    """Every brand the user can reach, with the role, ordered by brand name."""
    if not user.is_authenticated:
        return []
    brands = Brand.objects.filter(Q(memberships__user=user) | Q(agency_accesses__agency__members=user)).distinct()
    return [BrandAccess(brand=b, role=brand_role(user=user, brand=b)) for b in brands.order_by("name")]


def brand_role_require(*, user, brand, roles):
    """PermissionDenied unless the user holds one of `roles` on the brand.

    Outsiders never get here through views (they get 404 first); services
    call it too, so a command or task cannot act for a user beyond their role.
    """
    role = brand_role(user=user, brand=brand)
    if role not in roles:
        raise PermissionDenied(f"{user} ({role or 'no role'}) may not do this on brand {brand.slug}")
    return role


def layer_groups_allowed(*, user, brand):
    """The layer-group names the user may change on the brand's personas, or
    None for no limit (owners, and roles the brand has not limited)."""
    role = brand_role(user=user, brand=brand)
    if role == Role.OWNER:
        return None
    permission = LayerGroupPermission.objects.filter(brand=brand, role=role).first()
    return None if permission is None else set(permission.layer_groups)


def layer_group_permissions_for_brand(*, brand):
    return list(LayerGroupPermission.objects.filter(brand=brand).order_by("role"))


def members_for_brand(*, brand):
    """The brand's direct members, strongest role first, then by username."""
    memberships = Membership.objects.filter(brand=brand).select_related("user")
    return sorted(memberships, key=lambda m: (-ROLE_RANK[m.role], m.user.get_username().lower()))


def membership_get(*, brand, membership_id):
    """One membership of the brand; Http404 for any other id."""
    membership = Membership.objects.filter(brand=brand, pk=membership_id).select_related("user").first()
    if membership is None:
        raise Http404("No such member")
    return membership


def invitations_pending_for_brand(*, brand):
    """Invitations neither accepted nor withdrawn, newest first; expired ones
    included (Invitation.is_expired tells them apart) so owners see who never answered."""
    return list(Invitation.objects.open().filter(brand=brand).select_related("invited_by").order_by("-created_at"))


def invitation_get(*, brand, invitation_id):
    """One invitation of the brand; Http404 for any other id."""
    invitation = Invitation.objects.filter(brand=brand, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    return invitation


# --- API tokens -------------------------------------------------------------------

# last_used_at is a hint for owners ("is this token still in use?"), not a
# log: writing it at most once a minute keeps a busy token from turning every
# request into a write on one hot row.
API_TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


@sensitive_variables("raw")
def api_token_authenticate(raw):
    """The active token `raw` is, or None: malformed, unknown, altered,
    revoked, expired, or its creator's account deactivated.

    The row is found by its public key_id alone; the secret only ever meets
    the stored hash in hmac.compare_digest, and an unknown key_id is compared
    against a dummy hash, so timing tells nothing about the secret."""
    key_id = token_key_id(raw)
    if key_id is None:
        return None
    token = ApiToken.objects.select_related("created_by", "brand", "agency").filter(key_id=key_id).first()
    if not token_matches(raw, token.secret_hash if token else None) or token is None:
        return None
    now = timezone.now()
    if token.revoked_at is not None or token.expires_at <= now or not token.created_by.is_active:
        return None
    # One conditional UPDATE: concurrent requests write it once between them.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - API_TOKEN_LAST_USED_RESOLUTION)
    if ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
        token.last_used_at = now
    return token


def api_token_brands(*, token):
    """The brands the token may act for now: its own brands, less any an agency
    token's agency no longer has access to. The creator's role on each is
    still checked by the services."""
    brands = token.brands.all()
    if token.agency_id is not None:
        brands = brands.filter(agency_accesses__agency_id=token.agency_id)
    else:
        brands = brands.filter(pk=token.brand_id)
    return brands.distinct().order_by("name")


def _api_tokens():
    return ApiToken.objects.select_related("brand", "agency", "created_by").order_by("-created_at", "-pk")


def api_tokens_for_brand(*, brand):
    """Every token that may act for the brand (its own and agencies'),
    revoked and expired ones included, newest first."""
    return list(_api_tokens().filter(brands=brand).prefetch_related("brands"))


def api_tokens_for_agency(*, agency):
    """The agency's tokens, revoked and expired ones included, newest first."""
    return list(_api_tokens().filter(agency=agency).prefetch_related("brands"))


def api_token_get(*, brand, token_id):
    """One token acting for the brand; Http404 for any other id."""
    token = _api_tokens().filter(brands=brand, pk=token_id).first()
    if token is None:
        raise Http404("No such API token")
    return token
