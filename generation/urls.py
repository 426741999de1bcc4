from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/directions/new", views.direction_teach_view, name="direction-teach"),
]
