from django.contrib import admin

from .models import AssetReview, ReviewDecision, ReviewerGroup, Workflow


class ReadOnlyAdmin(admin.ModelAdmin):
    """Reviews move only through approvals.services; the admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return self.model.objects.unscoped()


@admin.register(AssetReview)
class AssetReviewAdmin(ReadOnlyAdmin):
    list_display = ["asset", "brand", "state", "step_index", "submitted_by", "submitted_at", "decided_by"]
    list_filter = ["state", "brand"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = ["review", "action", "step_name", "actor", "reason_code", "created_at"]
    list_filter = ["action", "reason_code"]


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["brand", "revision", "created_by", "created_at"]


@admin.register(ReviewerGroup)
class ReviewerGroupAdmin(ReadOnlyAdmin):
    list_display = ["name", "brand", "created_at"]
