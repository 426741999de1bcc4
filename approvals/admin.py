from django.contrib import admin

from brands.admin import BrandOwnedAdmin

from .models import AssetReview, ReviewDecision, ReviewerGroup, Workflow


@admin.register(AssetReview)
class AssetReviewAdmin(BrandOwnedAdmin):
    list_display = ["asset", "brand", "state", "step_index", "submitted_by", "submitted_at", "decided_by"]
    list_filter = ["state", "brand"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(BrandOwnedAdmin):
    list_display = ["review", "action", "step_name", "actor", "reason_code", "created_at"]
    list_filter = ["action", "reason_code"]


@admin.register(Workflow)
class WorkflowAdmin(BrandOwnedAdmin):
    list_display = ["brand", "revision", "created_by", "created_at"]


@admin.register(ReviewerGroup)
class ReviewerGroupAdmin(BrandOwnedAdmin):
    list_display = ["name", "brand", "created_at"]
