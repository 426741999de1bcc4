from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/campaigns/", views.campaign_list, name="campaign-list"),
    path("brands/<slug:brand_slug>/campaigns/new", views.campaign_create, name="campaign-create"),
    path("brands/<slug:brand_slug>/campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign-detail"),
    path(
        "brands/<slug:brand_slug>/campaigns/<int:campaign_id>/cancel",
        views.campaign_cancel_view,
        name="campaign-cancel",
    ),
    path(
        "brands/<slug:brand_slug>/campaigns/<int:campaign_id>/items/<int:item_id>/retry",
        views.campaign_item_retry_view,
        name="campaign-item-retry",
    ),
    path("brands/<slug:brand_slug>/assets/", views.asset_list, name="asset-list"),
    path(
        "brands/<slug:brand_slug>/assets/<int:asset_id>/download/<slug:kind>",
        views.asset_download,
        name="asset-download",
    ),
]
