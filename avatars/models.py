from django.conf import settings
from django.db import models

from brands.tenancy import BrandScopedManager

from .latents import latent_from_bytes, latent_sha256, latent_to_bytes, latent_validate


class Persona(models.Model):
    """A brand-owned virtual person: a W+ latent code of one generator model.

    The latent is validated on every save against the model's W+ shape. (Later
    work turns it into an immutable chain of versions; this row then points at
    the current one.)
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(max_length=120)
    handle = models.SlugField(max_length=60)
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.PROTECT, related_name="personas")
    # How the latent was made, when it was made from a seed.
    seed = models.PositiveBigIntegerField(null=True, blank=True)
    truncation_psi = models.FloatField(null=True, blank=True)
    latent = models.BinaryField(editable=False)
    latent_num_ws = models.PositiveSmallIntegerField(editable=False)
    latent_w_dim = models.PositiveSmallIntegerField(editable=False)
    latent_sha256 = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["brand", "handle"], name="persona_unique_brand_handle")]

    def __str__(self):
        return f"{self.name} (@{self.handle})"

    def latent_array(self):
        return latent_from_bytes(self.latent, num_ws=self.latent_num_ws, w_dim=self.latent_w_dim)

    def set_latent(self, latent):
        """Validate `latent` against this persona's model and store it."""
        latent_validate(latent, num_ws=self.model.num_ws, w_dim=self.model.w_dim, model_name=self.model.slug)
        self.latent = latent_to_bytes(latent)
        self.latent_num_ws, self.latent_w_dim = latent.shape
        self.latent_sha256 = latent_sha256(latent)

    def save(self, *args, **kwargs):
        # Whatever wrote the fields (a service, the shell, a migration of
        # data), the stored bytes must decode to a valid latent of the model.
        latent = latent_from_bytes(self.latent, num_ws=self.latent_num_ws, w_dim=self.latent_w_dim)
        latent_validate(latent, num_ws=self.model.num_ws, w_dim=self.model.w_dim, model_name=self.model.slug)
        self.latent_sha256 = latent_sha256(latent)
        super().save(*args, **kwargs)
