from django.conf import settings
from django.db import models
from django.utils import timezone


class WebhookEndpoint(models.Model):
    """Where a brand's (or an agency's) events are POSTed, signed with its secret.

    An agency's endpoint receives the events of every brand the agency has access
    to when the event happens. The secret is stored only encrypted (Fernet under a
    key derived from SECRET_KEY, as content.c2pa keeps the brands' signing keys);
    after a rotation the previous secret still signs, beside the new one, until
    previous_secret_expires_at, so receivers can switch without losing messages.
    """

    brand = models.ForeignKey(
        "brands.Brand", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    agency = models.ForeignKey(
        "brands.Agency", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Names from webhooks.EVENTS.
    events = models.JSONField(default=list)
    secret_encrypted = models.BinaryField()
    previous_secret_encrypted = models.BinaryField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Failed attempts in a row (any delivery) and when the first of them happened;
    # a success resets both. The disabling rule reads them (webhooks.delivery).
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(brand__isnull=False, agency__isnull=True)
                | models.Q(brand__isnull=True, agency__isnull=False),
                name="webhookendpoint_brand_xor_agency",
            )
        ]

    def __str__(self):
        return self.url

    def previous_secret_active(self, now=None):
        return (
            self.previous_secret_encrypted is not None
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > (now or timezone.now())
        )


class WebhookDelivery(models.Model):
    """One message to one endpoint and its attempts so far.

    The row is the outbox: a delivery waits here (pending, next_attempt_at) until
    an attempt succeeds or the attempts are used up, whatever happened to the
    task message that was meant to send it; beat's sweep sends due ones again.
    A replay is a new row with the same message id (webhook-id), so receivers that
    deduplicate on it see one message."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The brand the event happened in (an agency's endpoint hears several).
    brand = models.ForeignKey("brands.Brand", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=64)
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # An attempt in progress holds the row until then; past it the attempt is
    # taken for lost (its worker died) and the sweep sends the delivery again.
    locked_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replays")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # One delivery per event and endpoint, however often the event's
            # handler runs; replays are extra rows of the same message.
            models.UniqueConstraint(
                fields=["endpoint", "message_id"],
                condition=models.Q(replay_of__isnull=True),
                name="webhookdelivery_unique_endpoint_message",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_endpoint_log"),
        ]

    def __str__(self):
        return f"{self.event} {self.message_id} to endpoint {self.endpoint_id}"

    def body(self):
        """What is POSTed (and signed): the Standard Webhooks envelope."""
        return {"type": self.event, "timestamp": self.occurred_at.isoformat(), "data": self.payload}
