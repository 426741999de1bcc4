from django.conf import settings
from django.db import models

from brands.tenancy import BrandScopedManager


class Campaign(models.Model):
    """A brand's batch of images: pinned persona versions × looks × poses ×
    output formats × variants (noise seeds), each combination one item.

    The personas are never changed by a campaign: each item's look and pose is
    applied to its pinned version when the item is queued, and the resulting
    latent is what the worker renders.
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    brief = models.TextField(blank=True)
    # What was asked for: {"versions": [PersonaVersion ids], "looks": [LibraryItem
    # ids], "poses": [...]}; no looks (or poses) means the personas as pinned.
    # The items are the source of truth of what is rendered.
    matrix = models.JSONField()
    formats = models.JSONField()
    variants = models.PositiveSmallIntegerField()
    # The items' variants are first_variant .. first_variant + variants - 1: a schedule's
    # later runs start past 0 so that they render new noise, not the same pictures.
    first_variant = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The same key from the same brand again is the same campaign, never a second one.
    idempotency_key = models.CharField(max_length=120, blank=True)
    # What the submitter was shown: {"images", "seconds", "basis"} (see campaign_estimate).
    estimate = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="campaign_unique_brand_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(variants__gte=1), name="campaign_variants_gte_1"),
        ]

    def __str__(self):
        return self.name

    @property
    def batch_key(self):
        return f"campaign:{self.pk}"


class CampaignItem(models.Model):
    """One image of a campaign: a recipe (pinned version, look, pose, format,
    variant) and the render job that makes it. A retried item points at its
    newest job; the failed one stays in the job history."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    version = models.ForeignKey("avatars.PersonaVersion", on_delete=models.PROTECT, related_name="+")
    look = models.ForeignKey("avatars.LibraryItem", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pose = models.ForeignKey("avatars.LibraryItem", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    output_format = models.CharField(max_length=8)
    # 0: the model's constant noise (the persona as it always renders); n: noise seed n.
    variant = models.PositiveSmallIntegerField()
    job = models.OneToOneField("generation.GenerationJob", on_delete=models.PROTECT, related_name="campaign_item")

    objects = BrandScopedManager()

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["campaign", "id"])]

    def __str__(self):
        return f"Item {self.pk} of campaign {self.campaign_id}"

    @property
    def noise_seed(self):
        return None if self.variant == 0 else self.variant
