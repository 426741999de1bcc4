from django.urls import path

from . import views

urlpatterns = [
    path("brands/<slug:brand_slug>/personas/<int:persona_id>/render", views.persona_render, name="persona-render"),
]
