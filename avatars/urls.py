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
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/rename", views.persona_rename_view, name="persona-rename"),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/archive", views.persona_archive_view, name="persona-archive"
    ),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/unarchive",
        views.persona_unarchive_view,
        name="persona-unarchive",
    ),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/delete", views.persona_delete_view, name="persona-delete"),
    # The persona page's live parts and pictures (htmx swaps the partials in; the pictures are plain images).
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/live", views.persona_live, name="persona-live"),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/versions/<int:version_id>/picture.png",
        views.persona_version_picture,
        name="persona-version-picture",
    ),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/items/<int:item_id>/picture.png",
        views.persona_item_picture,
        name="persona-item-picture",
    ),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/directions/<int:direction_id>/strip.png",
        views.persona_direction_strip,
        name="persona-direction-strip",
    ),
    path(
        "brands/<slug:brand_slug>/personas/<int:persona_id>/direction-panel",
        views.persona_direction_panel,
        name="persona-direction-panel",
    ),
    path(
        "brands/<slug:brand_slug>/models/<int:model_id>/classes/<str:class_index>.png",
        views.class_picture,
        name="class-picture",
    ),
    path("brands/<slug:brand_slug>/library/", views.library, name="library"),
    path("brands/<slug:brand_slug>/library/items", views.library_item_create_view, name="library-item-create"),
    path(
        "brands/<slug:brand_slug>/library/permissions",
        views.layer_group_permission_view,
        name="layer-group-permission-set",
    ),
]
