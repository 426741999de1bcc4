import re

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
    # Set while archived (avatars.services.persona_archive): hidden from the gallery by
    # default, never rendered nor put into a new campaign; nothing of it is lost.
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["brand", "handle"], name="persona_unique_brand_handle")]

    def __str__(self):
        return f"{self.name} (@{self.handle})"

    def latent_array(self):
        return self.current_version.latent_array()

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

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

    @property
    def class_index(self):
        """The class label this version's latent stands under on a conditional model
        (what relabelling looks and poses start from), or None when unknown.

        Versions record it in `params`; older ones inherit it from the version they
        were made from (a rollback from the version it restored)."""
        version, seen = self, set()
        while version is not None and version.pk not in seen:
            seen.add(version.pk)
            params = version.params or {}
            if params.get("class_index") is not None:
                return params["class_index"]
            if version.operation == self.Operation.ROLLBACK and "to_version" in params:
                # The same persona's version: the same brand as this one.
                versions = PersonaVersion.objects.unscoped().filter(persona_id=version.persona_id)
                version = versions.filter(number=params["to_version"]).first()
            else:
                version = version.parent
        return None

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
                if params.get("attribute"):
                    return f"{kind} '{params['name']}': {params['attribute']} now {humanise(params['value'])}"
                return f"{kind} '{params['name']}' on {_layers([params['layer_group']])}"
            if self.operation == op.ROLLBACK:
                return f"Rolled back to v{params['to_version']}"
        except (LookupError, TypeError, ValueError):
            pass
        return self.get_operation_display()


def humanise(value):
    """'dark_jacket' -> 'dark jacket', 'handPhone' -> 'hand phone'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(value)).replace("_", " ").lower()


def _layers(groups):
    """'fine layers', 'coarse and fine layers'."""
    names = [str(group) for group in groups]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} layers"


class LibraryItem(models.Model):
    """A brand's reusable look (outfit) or pose.

    On a class-conditional model the outfit and the gesture are class attributes:
    the item is a *label* (`attribute` = value, e.g. outfit = dark_jacket), and
    applying it relabels the persona (generation.stylegan.relabel) — same person,
    new attribute. Otherwise it changes one layer group of a persona and nothing
    else: either a source latent (rows of `layer_group` are copied from it: a
    seed, a seed with a class label, or a persona version, snapshotted when the
    item is made) or a direction with a strength (added to the group's rows).
    `recipe` records where the source came from.
    """

    class Kind(models.TextChoices):
        LOOK = "look", "Look"
        POSE = "pose", "Pose"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="library_items")
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.PROTECT, related_name="library_items")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=120)
    # Empty for a label item.
    layer_group = models.CharField(max_length=40, blank=True)
    attribute = models.CharField(max_length=40, blank=True)
    value = models.CharField(max_length=80, blank=True)
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
                condition=models.Q(source_latent__isnull=False, direction__isnull=True, attribute="")
                | models.Q(source_latent__isnull=True, direction__isnull=False, strength__isnull=False, attribute="")
                | models.Q(source_latent__isnull=True, direction__isnull=True, layer_group="")
                & ~models.Q(attribute="")
                & ~models.Q(value=""),
                name="libraryitem_source_direction_or_label",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name} ({self.acts_on})"

    @property
    def is_label(self):
        return bool(self.attribute)

    @property
    def acts_on(self):
        """What the item changes, in words: 'outfit: dark jacket' or 'fine layers'."""
        return f"{self.attribute}: {humanise(self.value)}" if self.is_label else f"{self.layer_group} layers"

    def source_array(self):
        return latent_from_bytes(self.source_latent, num_ws=self.model.num_ws, w_dim=self.model.w_dim)


class IdentityFingerprint(models.Model):
    """A persona's identity when it was made or last changed, for the identity
    guard (avatars.identity). Append-only: the newest row of a persona is its
    current identity, and rows are only ever added, in id order, so a process
    can keep its in-memory index current by reading the rows after the last id
    it has seen.

    In the "w" space `embedding` is the mean of the identity rows [w_dim]
    float32 and `projected` its projection on the model's identity basis [k]
    float32; in the "learned" space (a model that ships an identity embedding)
    both are the embedding of the persona's render [D] float32, a unit vector.
    """

    class Space(models.TextChoices):
        W = "w", "Identity rows of W+"
        LEARNED = "learned", "Learned identity embedding of the render"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="identity_fingerprints")
    model = models.ForeignKey("generation.GeneratorModel", on_delete=models.CASCADE, related_name="+")
    space = models.CharField(max_length=8, choices=Space.choices, default=Space.W)
    embedding = models.BinaryField()
    projected = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        indexes = [models.Index(fields=["model", "id"]), models.Index(fields=["model", "space", "id"])]

    def __str__(self):
        return f"Identity of persona {self.persona_id} on model {self.model_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PersonaVersionImmutable("Identity fingerprints are append-only.")
        super().save(*args, **kwargs)
