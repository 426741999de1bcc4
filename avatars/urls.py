from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/personas/new", views.persona_create, name="persona-create"),
    path("brands/<slug:brand_slug>/personas/candidates", views.persona_candidates, name="persona-candidates"),
    path("brands/<slug:brand_slug>/personas/breed", views.persona_breed_view, name="persona-breed"),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/", views.persona_detail, name="persona-detail"),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/edit", views.persona_edit_view, name="persona-edit"),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/apply", views.persona_apply_view, name="persona-apply"),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/versions/<int:version_id>/rollback",
        views.persona_rollback_view,
        name="persona-rollback",
    ),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/render", views.persona_render, name="persona-render"),
    path("brands/<slug:brand_slug>/library/", views.library, name="library"),
    path("brands/<slug:brand_slug>/library/items", views.library_item_create_view, name="library-item-create"),
    path(
        "brands/<slug:brand_slug>/library/permissions",
        views.layer_group_permission_view,
        name="layer-group-permission-set",
    ),
]
