from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/personas/new", views.persona_create, name="persona-create"),
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/", views.persona_detail, name="persona-detail"),
]
