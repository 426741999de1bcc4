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
    # The PNG master: the format's publishable size (or the generator's square
    # output for plain renders), disclosure embedded. `web` (JPEG) and `thumbnail`
    # (WebP) are derived from it; renders made before campaigns have neither.
    image = models.FileField(upload_to="assets/%Y/%m/")
    web = models.FileField(blank=True)
    thumbnail = models.FileField(blank=True)
    # A content.formats.FORMATS key, or "" for the generator's square output.
    output_format = models.CharField(max_length=8, blank=True)
    # sha256 of the master file's bytes: what an approval is bound to.
    sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    # The approved copies (content.services.asset_release): the master with a new C2PA
    # manifest whose parent ingredient is `image`, and web and thumbnail without the DRAFT
    # mark. Empty until an approval releases them, emptied again when it lapses; the
    # approval they were released under is metadata["release"].
    released_image = models.FileField(blank=True)
    released_web = models.FileField(blank=True)
    released_thumbnail = models.FileField(blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["brand", "persona", "-created_at"])]

    def __str__(self):
        return f"Asset {self.pk} of persona {self.persona_id}"

    @property
    def identity_meaning(self):
        """The identity score in words, e.g. 'same person: 0.93, threshold 0.71'."""
        return self.persona.model.identity_meaning(self.identity_consistency)

    @property
    def released(self):
        """Approved and released: served and downloaded without the DRAFT mark."""
        return self.released_at is not None and bool(self.released_image)

    @property
    def ai_generated(self):
        return self.metadata.get("disclosure", {}).get("ai_generated", False)


class BrandSigningKey(models.Model):
    """The key a brand's C2PA manifests are signed with (content.c2pa), made on its
    first signature: a P-256 private key and its certificate chain.

    The private key is stored only encrypted (Fernet, under a key derived from
    SECRET_KEY); the certificate authority that issued the signing certificate
    is the brand's own and its private key is never stored.
    """

    class Algorithm(models.TextChoices):
        ES256 = "es256", "ECDSA P-256 with SHA-256 (ES256)"

    brand = models.OneToOneField("brands.Brand", on_delete=models.CASCADE, related_name="signing_key")
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices, default=Algorithm.ES256)
    # PEM: the signing certificate first, then the brand's root certificate, as
    # c2pa embeds them in every manifest.
    certificate_chain = models.TextField()
    # A Fernet token over the PKCS#8 PEM private key.
    private_key_encrypted = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    def __str__(self):
        return f"Signing key of brand {self.brand_id}"
