from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

BRAND = "brands/<slug:brand_slug>/"
PERSONA = BRAND + "personas/<int:persona_id>/"
ASSET = BRAND + "assets/<int:asset_id>/"
WEBHOOK = BRAND + "webhooks/<int:endpoint_id>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("brands/", views.BrandList.as_view(), name="api-brands"),
    path("models/", views.ModelList.as_view(), name="api-models"),
    path(BRAND + "directions/", views.DirectionList.as_view(), name="api-directions"),
    path(BRAND + "personas/", views.PersonaList.as_view(), name="api-personas"),
    path(BRAND + "personas/breed", views.PersonaBreed.as_view(), name="api-persona-breed"),
    path(PERSONA, views.PersonaDetail.as_view(), name="api-persona"),
    path(PERSONA + "versions/", views.PersonaVersionList.as_view(), name="api-persona-versions"),
    path(PERSONA + "edits", views.PersonaEdit.as_view(), name="api-persona-edit"),
    path(PERSONA + "library-applications", views.PersonaLibraryApply.as_view(), name="api-persona-apply"),
    path(PERSONA + "rollbacks", views.PersonaRollback.as_view(), name="api-persona-rollback"),
    path(PERSONA + "renders", views.PersonaRender.as_view(), name="api-persona-render"),
    path(BRAND + "library/", views.LibraryList.as_view(), name="api-library"),
    path(BRAND + "campaigns/", views.CampaignList.as_view(), name="api-campaigns"),
    path(BRAND + "campaigns/estimate", views.CampaignEstimate.as_view(), name="api-campaign-estimate"),
    path(BRAND + "campaigns/<int:campaign_id>/", views.CampaignDetail.as_view(), name="api-campaign"),
    path(BRAND + "campaigns/<int:campaign_id>/cancel", views.CampaignCancel.as_view(), name="api-campaign-cancel"),
    path(BRAND + "jobs/<int:job_id>/", views.JobDetail.as_view(), name="api-job"),
    path(BRAND + "assets/", views.AssetList.as_view(), name="api-assets"),
    path(ASSET, views.AssetDetail.as_view(), name="api-asset"),
    path(ASSET + "files/<slug:kind>", views.AssetFile.as_view(), name="api-asset-file"),
    path(ASSET + "verify", views.AssetVerify.as_view(), name="api-asset-verify"),
    path(ASSET + "review", views.AssetReviewView.as_view(), name="api-asset-review"),
    path(ASSET + "review/submit", views.AssetReviewSubmit.as_view(), name="api-asset-review-submit"),
    path(ASSET + "review/decisions", views.AssetDecisions.as_view(), name="api-asset-decisions"),
    path(ASSET + "comments", views.AssetComments.as_view(), name="api-asset-comments"),
    path(BRAND + "webhooks/", views.WebhookEndpointList.as_view(), name="api-webhooks"),
    path(WEBHOOK, views.WebhookEndpointDetail.as_view(), name="api-webhook"),
    path(WEBHOOK + "secret-rotations", views.WebhookSecretRotation.as_view(), name="api-webhook-rotate"),
    path(WEBHOOK + "deliveries/", views.WebhookDeliveryList.as_view(), name="api-webhook-deliveries"),
    path(
        WEBHOOK + "deliveries/<int:delivery_id>/replay",
        views.WebhookDeliveryReplay.as_view(),
        name="api-webhook-delivery-replay",
    ),
    path(BRAND + "channels/", views.ChannelList.as_view(), name="api-channels"),
    path(BRAND + "schedules/", views.ScheduleList.as_view(), name="api-schedules"),
    path(BRAND + "posts/", views.PostList.as_view(), name="api-posts"),
    path(BRAND + "posts/<int:post_id>/", views.PostDetail.as_view(), name="api-post"),
    path(BRAND + "posts/<int:post_id>/reschedule", views.PostReschedule.as_view(), name="api-post-reschedule"),
    path(BRAND + "posts/<int:post_id>/cancel", views.PostCancel.as_view(), name="api-post-cancel"),
    path(BRAND + "tokens/", views.ApiTokenList.as_view(), name="api-brand-tokens"),
    path(BRAND + "tokens/<int:token_id>/", views.ApiTokenDetail.as_view(), name="api-brand-token"),
]
