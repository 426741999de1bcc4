from django.contrib import admin

from brands.admin import ReadOnlyAdmin

from .models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Read-only: endpoints change through webhooks.services (audited; the secret
    is never shown again)."""

    list_display = ["url", "brand", "agency", "enabled", "consecutive_failures", "created_at"]
    list_filter = ["enabled"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event", "message_id", "endpoint", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event"]
    search_fields = ["message_id"]
