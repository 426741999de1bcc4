from django.db import models


class IdempotencyRecord(models.Model):
    """A POST that creates work, remembered by the caller's Idempotency-Key (for
    API_IDEMPOTENCY_TTL seconds): a replay gets the first response back. Request
    bookkeeping of the API adapter, not domain data."""

    # "token:<id>" or "user:<id>": keys are the caller's own.
    caller = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    # sha256 of method, path and the JSON body: the same key with another payload is refused.
    fingerprint = models.CharField(max_length=64)
    # Null while the first request is in flight.
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="idempotencyrecord_unique_caller_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.caller} {self.key}"
