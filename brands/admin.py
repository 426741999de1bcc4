from django.contrib import admin

from .models import Agency, AgencyAccess, ApiToken, Brand, Invitation, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class AgencyAccessInline(admin.TabularInline):
    model = AgencyAccess
    extra = 0


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through services (validation, audit), so the admin offers none."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "monthly_image_quota", "identity_threshold", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline, AgencyAccessInline]


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]
    inlines = [AgencyAccessInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["brand", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["brand__slug", "user__username"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are made, withdrawn and accepted through the
    services (owner checks, audit, email); the admin only shows them."""

    list_display = ["email", "brand", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "brand__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Read-only, and without the secret's hash: tokens are made and revoked
    through the services (owner checks, audit), which the dashboard and the
    API call; the admin only shows them."""

    list_display = [
        "name",
        "display",
        "brand",
        "agency",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "key_id", "brand__slug", "agency__slug", "created_by__username"]
    fields = [
        "name",
        "key_id",
        "brand",
        "agency",
        "brands",
        "scopes",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields


class BrandOwnedAdmin(ReadOnlyAdmin):
    """Operators' read-only view of a brand-owned table, across all brands.

    The admin is the one place that deliberately reads without a brand scope.
    """

    def get_queryset(self, request):
        return super().get_queryset(request).unscoped()
