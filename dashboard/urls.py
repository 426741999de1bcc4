from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("brands/<slug:brand_slug>/", views.brand_dashboard, name="brand-dashboard"),
]
