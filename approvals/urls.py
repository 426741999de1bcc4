from django.urls import path

from . import views, workflow_views

urlpatterns = [
    path("brands/<slug:brand_slug>/approvals/", views.approval_queue, name="approval-queue"),
    path("brands/<slug:brand_slug>/approvals/decide", views.approvals_decide, name="approvals-decide"),
    path("brands/<slug:brand_slug>/approvals/submit", views.approvals_submit, name="approvals-submit"),
    path("brands/<slug:brand_slug>/approvals/workflow", workflow_views.workflow_settings, name="approval-workflow"),
    path(
        "brands/<slug:brand_slug>/approvals/groups", workflow_views.reviewer_group_create, name="reviewer-group-create"
    ),
    path(
        "brands/<slug:brand_slug>/approvals/groups/<int:group_id>",
        workflow_views.reviewer_group_update,
        name="reviewer-group-update",
    ),
    path("brands/<slug:brand_slug>/assets/<int:asset_id>/", views.asset_detail, name="asset-detail"),
    path("brands/<slug:brand_slug>/assets/<int:asset_id>/comments", views.comment_create, name="asset-comment"),
]
