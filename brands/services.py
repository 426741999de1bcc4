import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.services import audit_record

from .models import Agency, AgencyAccess, Brand, LayerGroupPermission, Membership, Role
from .selectors import brand_role_require

# Layer-group names as generator models define them; the dashboard offers
# only the registered models' names, this bounds what any caller may store.
LAYER_GROUP_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")
LAYER_GROUPS_MAX = 32
LIMITABLE_ROLES = [role for role in Role.values if role != Role.OWNER]


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


@transaction.atomic
def membership_add(*, actor, brand, user, role):
    """Give `user` a role on the brand (or change it). Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."})
    membership = Membership.objects.filter(brand=brand, user=user).first()
    before = {"user": user.get_username(), "role": membership.role} if membership else None
    if membership is None:
        membership = Membership.objects.create(brand=brand, user=user, role=role)
    else:
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
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."})
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
