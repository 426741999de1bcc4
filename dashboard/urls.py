from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("brands/<slug:brand_slug>/", views.brand_dashboard, name="brand-dashboard"),
    path("brands/<slug:brand_slug>/settings/", views.brand_settings, name="brand-settings"),
    path(
        "brands/<slug:brand_slug>/settings/identity-threshold/",
        views.brand_identity_threshold,
        name="brand-identity-threshold",
    ),
    path("brands/<slug:brand_slug>/team/", views.team, name="team"),
    path("brands/<slug:brand_slug>/team/invitations/", views.team_invite, name="team-invite"),
    path(
        "brands/<slug:brand_slug>/team/invitations/<int:invitation_id>/revoke/",
        views.team_invitation_revoke,
        name="team-invitation-revoke",
    ),
    path(
        "brands/<slug:brand_slug>/team/members/<int:membership_id>/role/",
        views.team_member_role,
        name="team-member-role",
    ),
    path(
        "brands/<slug:brand_slug>/team/members/<int:membership_id>/remove/",
        views.team_member_remove,
        name="team-member-remove",
    ),
    path("brands/<slug:brand_slug>/tokens/", views.tokens, name="api-tokens"),
    path("brands/<slug:brand_slug>/tokens/create/", views.token_create, name="api-token-create"),
    path("brands/<slug:brand_slug>/tokens/<int:token_id>/revoke/", views.token_revoke, name="api-token-revoke"),
    path("invitations/<str:token>/", views.invitation_accept_page, name="invitation-accept"),
]
