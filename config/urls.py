from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("dashboard.urls")),
    path("", include("avatars.urls")),
    path("", include("generation.urls")),
    path("", include("content.urls")),
    path("", include("campaigns.urls")),
    path("", include("approvals.urls")),
    path("", include("webhooks.urls")),
    path("", include("publishing.urls")),
    path("api/v1/", include("api.urls")),
]

handler403 = "config.security.permission_denied"
handler404 = "api.problems.page_not_found"
handler500 = "api.problems.server_error"
