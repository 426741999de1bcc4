from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/webhooks/", views.endpoint_list, name="webhook-list"),
    path("brands/<slug:brand_slug>/webhooks/<int:endpoint_id>/", views.endpoint_detail, name="webhook-detail"),
    path("brands/<slug:brand_slug>/webhooks/<int:endpoint_id>/edit", views.endpoint_update, name="webhook-update"),
    path("brands/<slug:brand_slug>/webhooks/<int:endpoint_id>/rotate", views.endpoint_rotate, name="webhook-rotate"),
    path("brands/<slug:brand_slug>/webhooks/<int:endpoint_id>/delete", views.endpoint_delete, name="webhook-delete"),
    path(
        "brands/<slug:brand_slug>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay",
        views.delivery_replay,
        name="webhook-delivery-replay",
    ),
]
