from django.db import models

from brands.tenancy import BrandScopedManager


class Asset(models.Model):
    """A rendered image of a persona, stored through Django's storage API.

    metadata holds "provenance" (model, checkpoint sha256, latent sha256, seed,
    job) and "disclosure" (ai_generated, always true for rendered assets).
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="assets")
    persona = models.ForeignKey("avatars.Persona", on_delete=models.CASCADE, related_name="assets")
    # The persona version this image shows.
    version = models.ForeignKey("avatars.PersonaVersion", on_delete=models.CASCADE, related_name="assets")
    # Against a render of the persona's first version (generation.stylegan.identity);
    # null for an asset that was not scored.
    identity_consistency = models.FloatField(null=True, blank=True)
    job = models.OneToOneField(
        "generation.GenerationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="asset"
    )
    image = models.FileField(upload_to="assets/%Y/%m/")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["brand", "persona", "-created_at"])]

    def __str__(self):
        return f"Asset {self.pk} of persona {self.persona_id}"

    @property
    def ai_generated(self):
        return self.metadata.get("disclosure", {}).get("ai_generated", False)
