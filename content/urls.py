from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/assets/<int:asset_id>/image", views.asset_image, name="asset-image"),
]
