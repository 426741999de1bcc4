from django.conf import settings
from django.db import models
from django.utils import timezone

from .tokens import token_display


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    CREATOR = "creator", "Creator"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


# Higher wins when a user reaches a brand both directly and through an agency.
ROLE_RANK = {Role.VIEWER: 1, Role.REVIEWER: 2, Role.CREATOR: 3, Role.OWNER: 4}
# Roles that may create personas and request renders.
CREATE_ROLES = frozenset({Role.OWNER, Role.CREATOR})


class Brand(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # Images the brand may queue per calendar month (settings.TIME_ZONE), renders
    # and campaigns together; a campaign that would pass it is refused.
    monthly_image_quota = models.PositiveIntegerField(default=2000, db_default=2000)
    # Campaign images scoring below this identity consistency are flagged on the board.
    identity_threshold = models.FloatField(default=0.5, db_default=0.5)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user's direct role on one brand."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="brand_memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "user"], name="membership_unique_brand_user")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.brand}"


class Agency(models.Model):
    """A team (say, a marketing agency) working for several brands."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="agencies", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"

    def __str__(self):
        return self.name


class AgencyAccess(models.Model):
    """Every member of `agency` has `role` on `brand`."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="accesses")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="agency_accesses")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agency accesses"
        constraints = [models.UniqueConstraint(fields=["agency", "brand"], name="agencyaccess_unique_agency_brand")]

    def __str__(self):
        return f"{self.agency} is {self.role} of {self.brand}"


class LayerGroupPermission(models.Model):
    """Which layer groups (by name) members with `role` may change on the brand's
    personas, e.g. creators: ["outfit"]. A role with no row may change every
    group; a role limited to some groups may not create new personas (a new
    face changes every group)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="layer_group_permissions")
    role = models.CharField(max_length=16, choices=Role.choices)
    layer_groups = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["brand", "role"], name="layergrouppermission_unique_brand_role")]

    def __str__(self):
        return f"{self.role} of {self.brand} may change {', '.join(self.layer_groups) or 'no layer group'}"


class InvitationQuerySet(models.QuerySet):
    def open(self):
        """Neither accepted nor revoked (possibly expired)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An owner's invitation to join a brand with a role, sent by email.

    The link carries a token signed with SECRET_KEY over the id (see
    brands.services.invitation_token); nothing stored here lets a database
    reader make a working link."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations_accepted"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Re-inviting an address revokes its open invitation first, so an
            # owner never has two live links for one person to reason about.
            models.UniqueConstraint(
                fields=["brand", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_brand_email",
            )
        ]

    def __str__(self):
        return f"{self.email} invited as {self.role} of {self.brand}"

    def is_expired(self, now=None):
        return self.expires_at <= (now or timezone.now())


# What an API token may do, by resource family; the labels are what the
# dashboard offers beside each checkbox.
API_SCOPE_LABELS = {
    "brands:read": "Read the brands it acts for",
    "models:read": "Read generator models and their licence notes",
    "personas:read": "Read personas, their versions, looks and poses",
    "personas:write": "Create and edit personas (edits, breeding, rollback)",
    "library:read": "Read the looks and poses library",
    "library:write": "Add to the looks and poses library",
    "campaigns:read": "Read campaigns and their progress",
    "campaigns:write": "Create and cancel campaigns",
    "jobs:read": "Read render jobs",
    "assets:read": "Read and download assets",
    "assets:write": "Change assets (submit them for review)",
    "approvals:read": "Read reviews, decisions and comments",
    "approvals:decide": "Approve, reject or ask for changes",
    "comments:write": "Comment on assets",
    "webhooks:read": "Read webhook endpoints and their deliveries",
    "webhooks:write": "Create, change and delete webhook endpoints",
    "publishing:read": "Read channels, schedules and the publishing calendar",
    "publishing:write": "Schedule, move and cancel posts",
    "tokens:read": "Read API tokens",
    "tokens:write": "Create and revoke API tokens",
}
API_SCOPES = list(API_SCOPE_LABELS)


class ApiTokenQuerySet(models.QuerySet):
    def active(self, now=None):
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class ApiToken(models.Model):
    """A credential for the REST API, bound either to one brand (its owners
    make it) or to an agency (its members make it), acting for `brands` only
    and limited to `scopes`.

    The raw token, `ps_live_<key_id>_<secret>`, is shown once when it is made
    (brands.tokens); only sha256 of it is kept here, so nothing stored lets a
    database reader make a working token.

    A token acts as `created_by`: every service it reaches still checks that
    user's role on the brand. A creator who loses their role (removed from the
    team, demoted, the agency's access withdrawn) is not revoked here: the
    token keeps authenticating but every service it calls refuses it, exactly
    as it refuses that user. A deactivated creator's token does not
    authenticate at all (brands.selectors.api_token_authenticate)."""

    name = models.CharField(max_length=120)
    # Exactly one of brand (a brand's own token) and agency (an agency's).
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens")
    # A brand token: just its brand; an agency token: brands the agency had access to when it was made.
    brands = models.ManyToManyField(Brand, related_name="api_tokens_acting")
    scopes = models.JSONField(default=list)
    key_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(brand__isnull=False, agency__isnull=True)
                | models.Q(brand__isnull=True, agency__isnull=False),
                name="apitoken_brand_xor_agency",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.display})"

    @property
    def is_active(self):
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def is_expired(self):
        return self.expires_at <= timezone.now()

    @property
    def display(self):
        """The token as lists show it: the public prefix, never the secret."""
        return token_display(self.key_id)

    def has_scope(self, scope):
        return scope in self.scopes

    def scope_labels(self):
        return [API_SCOPE_LABELS.get(scope, scope) for scope in self.scopes]
