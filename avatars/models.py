from django.conf import settings
from django.db import models

from brands.tenancy import BrandScopedManager, BrandScopedQuerySet

from .latents import latent_from_bytes, latent_sha256, latent_to_bytes, latent_validate


class Persona(models.Model):
    """A brand-owned virtual person of one generator model.

    Its latent is an immutable chain of PersonaVersion rows; `current_version`
    is the one renders use by default. `seed` and `truncation_psi` record how
    the first version was made, when it was made from a seed.
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(max_length=120)
    handle = models.SlugField(max_length=60)
    bio = models.TextField(blank=True)
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.PROTECT, related_name="personas")
    seed = models.PositiveBigIntegerField(null=True, blank=True)
    truncation_psi = models.FloatField(null=True, blank=True)
    # Null only between creating the persona and its first version, in one transaction.
    current_version = models.ForeignKey(
        "PersonaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
        return self.current_version.latent_array()

    @property
    def latent_sha256(self):
        return self.current_version.sha256


class PersonaVersionImmutable(Exception):
    """Raised on any attempt to change or remove a persona version."""


class PersonaVersionQuerySet(BrandScopedQuerySet):
    def update(self, **kwargs):
        raise PersonaVersionImmutable("Persona versions are immutable; make a new version instead.")

    def delete(self):
        raise PersonaVersionImmutable("Persona versions are immutable; roll back to an old one instead.")


class PersonaVersion(models.Model):
    """One immutable state of a persona's W+ latent [num_ws, w_dim].

    The latent is stored as raw float32 bytes plus its shape (never pickled) and
    validated against the model on save; `sha256` hashes those bytes. `parent`
    is the version it was made from; `operation` and `params` say how.
    """

    class Operation(models.TextChoices):
        SEED = "seed", "From a seed"
        MIX = "mix", "Bred from two personas"
        EDIT = "edit", "Edited along a direction"
        LOOK = "look", "Look applied"
        POSE = "pose", "Pose applied"
        ROLLBACK = "rollback", "Rolled back"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    operation = models.CharField(max_length=16, choices=Operation.choices)
    params = models.JSONField(default=dict, blank=True)
    latent = models.BinaryField()
    num_ws = models.PositiveSmallIntegerField()
    w_dim = models.PositiveSmallIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager.from_queryset(PersonaVersionQuerySet)()

    class Meta:
        ordering = ["persona", "-number"]
        constraints = [models.UniqueConstraint(fields=["persona", "number"], name="personaversion_unique_number")]

    def __str__(self):
        return f"v{self.number} of persona {self.persona_id} ({self.operation})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PersonaVersionImmutable("Persona versions are immutable; make a new version instead.")
        # Whatever wrote the fields, the bytes must decode to a valid latent of the model.
        model = self.persona.model
        latent = latent_from_bytes(self.latent, num_ws=self.num_ws, w_dim=self.w_dim)
        latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
        self.sha256 = latent_sha256(latent)
        super().save(*args, **kwargs)

    def latent_array(self):
        return latent_from_bytes(self.latent, num_ws=self.num_ws, w_dim=self.w_dim)

    def set_latent(self, latent, *, model):
        latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
        self.latent = latent_to_bytes(latent)
        self.num_ws, self.w_dim = latent.shape
        self.sha256 = latent_sha256(latent)

    def delete(self, *args, **kwargs):
        raise PersonaVersionImmutable("Persona versions are immutable; roll back to an old one instead.")

    @property
    def description(self):
        """How this version was made, in plain words, from the params its
        operation records (see avatars.services); params missing a key, as an
        older version's may, give the operation's label alone."""
        params, op = self.params or {}, self.Operation
        try:
            if self.operation == op.SEED:
                text = f"Created from seed {params['seed']}, ψ {params['truncation_psi']:g}"
                if params.get("class_index") is not None:
                    text += f", class {self.persona.model.class_names[params['class_index']]}"
                return text
            if self.operation == op.MIX:
                base, donor = params["base"], params["donor"]
                return (
                    f"Bred from @{base['persona']} v{base['version']} with the "
                    f"{_layers(params['layer_groups'])} of @{donor['persona']} v{donor['version']}"
                )
            if self.operation == op.EDIT:
                return (
                    f"Moved {params['strength']:g} along '{params['direction']}' ({_layers([params['layer_group']])})"
                )
            if self.operation in (op.LOOK, op.POSE):
                kind = "Look" if self.operation == op.LOOK else "Pose"
                return f"{kind} '{params['name']}' on {_layers([params['layer_group']])}"
            if self.operation == op.ROLLBACK:
                return f"Rolled back to v{params['to_version']}"
        except (LookupError, TypeError, ValueError):
            pass
        return self.get_operation_display()


def _layers(groups):
    """'fine layers', 'coarse and fine layers'."""
    names = [str(group) for group in groups]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} layers"


class LibraryItem(models.Model):
    """A brand's reusable look (outfit) or pose: a recipe that changes one layer
    group of a persona and nothing else.

    Either a source latent (rows of `layer_group` are copied from it: a seed,
    a seed with a class label, or a persona version, snapshotted when the item
    is made) or a direction with a strength (added to the group's rows).
    `recipe` records where the source came from.
    """

    class Kind(models.TextChoices):
        LOOK = "look", "Look"
        POSE = "pose", "Pose"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="library_items")
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.PROTECT, related_name="library_items")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=120)
    layer_group = models.CharField(max_length=40)
    source_latent = models.BinaryField(null=True, blank=True)
    direction = models.ForeignKey(
        "generation.Direction", null=True, blank=True, on_delete=models.PROTECT, related_name="library_items"
    )
    strength = models.FloatField(null=True, blank=True)
    recipe = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "kind", "name"], name="libraryitem_unique_brand_kind_name"),
            models.CheckConstraint(
                condition=models.Q(source_latent__isnull=False, direction__isnull=True)
                | models.Q(source_latent__isnull=True, direction__isnull=False, strength__isnull=False),
                name="libraryitem_source_or_direction",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name} ({self.layer_group})"

    def source_array(self):
        return latent_from_bytes(self.source_latent, num_ws=self.model.num_ws, w_dim=self.model.w_dim)


class IdentityFingerprint(models.Model):
    """A persona's identity when it was made or last changed, for the identity
    guard (avatars.identity). Append-only: the newest row of a persona is its
    current identity, and rows are only ever added, in id order, so a process
    can keep its in-memory index current by reading the rows after the last id
    it has seen.

    `embedding` is the mean of the identity rows [w_dim] float32; `projected`
    its projection on the model's identity basis [k] float32.
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="identity_fingerprints")
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.CASCADE, related_name="+")
    embedding = models.BinaryField()
    projected = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        indexes = [models.Index(fields=["model", "id"])]

    def __str__(self):
        return f"Identity of persona {self.persona_id} on model {self.model_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PersonaVersionImmutable("Identity fingerprints are append-only.")
        super().save(*args, **kwargs)
