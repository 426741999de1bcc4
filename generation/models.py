from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from brands.tenancy import BrandScopedManager, BrandScopedQuerySet

from .layer_groups import layer_group_rows


class TruncationCentre(models.TextChoices):
    GLOBAL = "global", "Global average w (NVIDIA's truncation)"
    CLASS = "class", "The class's centre (models trained here)"


class GeneratorModel(models.Model):
    """A registered generator checkpoint: a directory holding the engine's
    config.json and weights.safetensors, pinned by the weights' sha256.

    Global, not brand-owned: every brand may render with a registered model.
    """

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # Absolute, or relative to settings.MODELS_ROOT.
    directory = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    # GeneratorConfig.to_dict() of the checkpoint.
    config = models.JSONField()
    # The W+ shape every persona of this model must have.
    num_ws = models.PositiveSmallIntegerField()
    w_dim = models.PositiveSmallIntegerField()
    licence_note = models.TextField(help_text="Where the weights come from and what they may be used for.")
    # Names of the classes of a conditional model, index = class label; [] when unconditional.
    class_names = models.JSONField(default=list, blank=True)
    # What each class is made of, index = class label: [{"outfit": ..., "gesture": ...}]
    # (from the checkpoint's training.json); [] when unknown. Looks and poses of a
    # conditional model change one attribute of a persona's class (LOOK_ATTRIBUTE,
    # POSE_ATTRIBUTE) and keep the rest.
    class_attributes = models.JSONField(default=list, blank=True)
    # [{"name", "start", "end"}]: see generation.layer_groups.
    layer_groups = models.JSONField(default=list)
    identity_group = models.CharField(max_length=40)
    # Where truncation pulls w: the global w_avg (NVIDIA's behaviour, every
    # imported checkpoint) or the class's centre (models trained here). A
    # property of the checkpoint, read from its config on registration.
    truncation_centre = models.CharField(max_length=8, choices=TruncationCentre.choices, default="global")
    # The identity guard (avatars.identity): personas of different brands must be
    # at least this far apart in identity (Euclidean distance of the means of
    # their identity rows). Calibrated on registration; operators may change it.
    identity_min_distance = models.FloatField(default=0.0)
    # Orthonormal rows [k, w_dim] float32 (top principal components of sampled w):
    # the guard's compact embedding is the projection of the identity mean on them.
    identity_basis = models.BinaryField(editable=False, default=b"")
    # The average faces nobody may own: float32 rows [n, w_dim], where truncation at
    # ψ 0 lands whichever way the model truncates (w_avg, then each class's centre
    # for a conditional model); and the median distance of random personas (seeds at
    # ψ 0.7) from the nearest of them, which scales the guard near the centre.
    # 0: not yet calibrated (models registered before 0009); the guard calibrates
    # such a model on its first identity change (avatars.identity.identity_centres).
    identity_centres = models.BinaryField(editable=False, default=b"")
    identity_centre_distance = models.FloatField(editable=False, default=0.0)
    # The identity measure renders are scored with (generation.stylegan.identity) and its
    # calibration: {"name", "threshold", "same_person_median", "different_person_median",
    # "duplicate_threshold"}; written on registration. A "learned" measure (an embedding
    # the checkpoint ships) also drives the identity guard; {} for models registered
    # before measures were recorded: scored with the pixel fallback.
    identity_measure = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def path(self):
        directory = Path(self.directory)
        return directory if directory.is_absolute() else Path(settings.MODELS_ROOT) / directory

    @property
    def z_dim(self):
        return self.config["z_dim"]

    @property
    def c_dim(self):
        return self.config["c_dim"]

    @property
    def img_resolution(self):
        return self.config["img_resolution"]

    @property
    def choice_label(self):
        """The model's name with a short licence line, for wherever a model is
        chosen: the note's first sentence, cut to about 60 characters at a word
        (a whole note inside a dropdown made pages wider than the window)."""
        note = " ".join(self.licence_note.split())
        line = note.split(". ", 1)[0].removesuffix(".")
        if len(line) > 60:
            line = line[:60].rsplit(" ", 1)[0].rstrip(",;:(") + "…"
        return f"{self.name} ({line})"

    def layer_group_rows(self, name):
        return layer_group_rows(self.layer_groups, name)

    def identity_basis_array(self):
        return np.frombuffer(bytes(self.identity_basis), dtype="<f4").reshape(-1, self.w_dim)

    @property
    def identity_calibrated(self):
        """Whether the identity guard's centres are stored (see avatars.identity)."""
        return self.identity_centre_distance > 0 and bool(self.identity_centres)

    @property
    def identity_learned(self):
        """Whether the identity guard compares people with the model's identity embedding."""
        return self.identity_measure.get("duplicate_threshold") is not None

    def identity_meaning(self, similarity):
        """'same person: 0.93, threshold 0.71' (or 'not the same person: …') under a
        measure that recognises people; 'pixel similarity 0.93' under the pixel fallback,
        which cannot tell people apart; None when unscored."""
        threshold = self.identity_measure.get("threshold")
        if similarity is None:
            return None
        if threshold is None or self.identity_measure.get("name") == "pixel-structure":
            return f"pixel similarity {similarity:.2f}"
        verdict = "same person" if similarity >= threshold else "not the same person"
        return f"{verdict}: {similarity:.2f}, threshold {threshold:.2f}"

    @property
    def identity_rows(self):
        return layer_group_rows(self.layer_groups, self.identity_group)

    def attribute_values(self, attribute):
        """The values `attribute` takes across the model's classes, in class order."""
        return list(dict.fromkeys(a[attribute] for a in self.class_attributes if attribute in a))

    def class_with(self, class_index, attribute, value):
        """The class that is `class_index` with `attribute` set to `value`; None if none is."""
        wanted = {**self.class_attributes[class_index], attribute: value}
        return self.class_attributes.index(wanted) if wanted in self.class_attributes else None

    def class_label_validate(self, class_index):
        """Refuse a class label this model does not have (any label for an unconditional one)."""
        if not self.c_dim:
            if class_index is not None:
                raise ValidationError({"class_index": f"Model {self.slug} is unconditional; it takes no class label."})
            return
        if class_index is None or not 0 <= class_index < self.c_dim:
            raise ValidationError(
                {"class_index": f"Model {self.slug} is conditional: choose a class label from 0 to {self.c_dim - 1}."}
            )


class GenerationJob(models.Model):
    """One request to render a persona, processed by a Celery task.

    attempts counts claims by workers; see generation.services.jobs.generation_job_claim
    for how a claim is made and why it cannot render a job twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="generation_jobs")
    persona = models.ForeignKey("avatars.Persona", on_delete=models.CASCADE, related_name="generation_jobs")
    # The exact latent rendered: later versions of the persona do not change this job.
    version = models.ForeignKey("avatars.PersonaVersion", on_delete=models.CASCADE, related_name="generation_jobs")
    # The version whose render the image's identity consistency is scored against.
    reference_version = models.ForeignKey("avatars.PersonaVersion", on_delete=models.CASCADE, related_name="+")
    # What the asset's provenance says of the persona (handle, version, seed, ...).
    provenance = models.JSONField(default=dict, blank=True)
    # The exact W+ [num_ws, w_dim] float32 to render when it is not `version`'s own:
    # a campaign's look and pose applied to the pinned version (a recipe, never a
    # new version). Empty: render `version` as it is.
    latent = models.BinaryField(null=True, blank=True)
    # None: the model's stored constant noise; a number: noise drawn from that seed
    # (a campaign's variants), the same on every device.
    noise_seed = models.PositiveIntegerField(null=True, blank=True)
    # "" keeps the generator's square output; otherwise a content.formats.FORMATS key.
    output_format = models.CharField(max_length=8, blank=True)
    # Jobs sharing a key (a campaign's) may be claimed and rendered in one batch.
    batch_key = models.CharField(max_length=64, blank=True)
    model = models.ForeignKey(GeneratorModel, on_delete=models.PROTECT, related_name="jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    # "host:pid" of the worker process holding the current claim.
    claimed_by = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The outbox: when the broker accepted the job's task; until then, the
    # sweeper sends it again at next_dispatch_at, and dispatch_error says why.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveSmallIntegerField(default=0)
    next_dispatch_at = models.DateTimeField(null=True, blank=True)
    dispatch_error = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Milliseconds per phase: queue_wait, load, render, encode, save.
    timings = models.JSONField(default=dict, blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["brand", "persona", "-queued_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["status", "dispatched_at", "next_dispatch_at"]),
            models.Index(
                fields=["batch_key", "status"], condition=~models.Q(batch_key=""), name="job_batch_key_status"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="generationjob_max_attempts_gte_1"),
        ]

    def __str__(self):
        return f"Job {self.pk} ({self.status}) for {self.persona_id}"

    @property
    def is_finished(self):
        return self.status in FINISHED_STATUSES

    def render_latent(self):
        """The W+ [num_ws, w_dim] float32 this job renders."""
        if self.latent:
            return np.frombuffer(bytes(self.latent), dtype="<f4").reshape(self.model.num_ws, self.model.w_dim)
        return self.version.latent_array()

    @property
    def waiting_reason(self):
        """Why a queued job has not started, in words for its page."""
        if self.status != self.Status.QUEUED:
            return ""
        if self.dispatched_at is None and self.dispatch_error:
            return self.dispatch_error
        return "Waiting for a worker."


FINISHED_STATUSES = frozenset(
    {GenerationJob.Status.SUCCEEDED, GenerationJob.Status.FAILED, GenerationJob.Status.CANCELLED}
)


class WorkerThroughput(models.Model):
    """Images per second one worker measured rendering one model on one device
    at one batch size: its latest batch, from claim to stored assets. Campaign
    cost estimates read these, never a constant."""

    worker = models.CharField(max_length=255)
    model = models.ForeignKey(GeneratorModel, on_delete=models.CASCADE, related_name="throughputs")
    device = models.CharField(max_length=40)
    dtype = models.CharField(max_length=16)
    batch_size = models.PositiveSmallIntegerField()
    images = models.PositiveIntegerField()
    seconds = models.FloatField()
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "model", "device", "batch_size"], name="workerthroughput_unique_worker_setup"
            ),
            models.CheckConstraint(condition=models.Q(seconds__gt=0), name="workerthroughput_seconds_gt_0"),
        ]

    def __str__(self):
        return f"{self.worker}: {self.images_per_second:.2f} images/s of {self.model_id} on {self.device}"

    @property
    def images_per_second(self):
        return self.images / self.seconds


class DirectionQuerySet(BrandScopedQuerySet):
    """Directions are model-wide (brand None) or one brand's own. Like other
    brand data, a query must say whose view it is: `for_brand(brand)` (the
    model-wide ones and the brand's), `model_wide()` (none taught by a brand),
    or `unscoped()` (admin)."""

    def for_brand(self, brand):
        self._brand_check(brand)
        return self._scoped(self.filter(models.Q(brand=None) | models.Q(brand=brand)))

    def model_wide(self):
        return self._scoped(self.filter(brand=None))


class Direction(models.Model):
    """A semantic direction in W of one model, applied to one of its layer groups.

    `vector` is a unit vector [w_dim] stored as raw float32 bytes. A strength
    outside [strength_min, strength_max] is refused: beyond it images degrade.
    """

    class Kind(models.TextChoices):
        SEFA = "sefa", "Closed-form factorization (SeFa)"
        GANSPACE = "ganspace", "PCA of sampled w (GANSpace)"
        INTERFACEGAN = "interfacegan", "Linear boundary on labels (InterFaceGAN)"

    model = models.ForeignKey(GeneratorModel, on_delete=models.CASCADE, related_name="directions")
    # None: computed for the model, offered to every brand; set: taught by that brand
    # from examples it labelled, offered to it alone.
    brand = models.ForeignKey(
        "brands.Brand", null=True, blank=True, on_delete=models.CASCADE, related_name="directions"
    )
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    layer_group = models.CharField(max_length=40)
    vector = models.BinaryField()
    strength_min = models.FloatField()
    strength_max = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DirectionQuerySet.as_manager()

    class Meta:
        ordering = ["model", "layer_group", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "name"], condition=models.Q(brand=None), name="direction_unique_model_name"
            ),
            models.UniqueConstraint(fields=["model", "brand", "name"], name="direction_unique_brand_name"),
            models.CheckConstraint(
                condition=models.Q(strength_min__lt=models.F("strength_max")), name="direction_range"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.layer_group}, {self.model.slug})"

    def vector_array(self):
        return np.frombuffer(bytes(self.vector), dtype="<f4")

    def strength_validate(self, strength):
        if not self.strength_min <= strength <= self.strength_max:
            raise ValidationError(
                {
                    "strength": f"Strength for {self.name} must be within [{self.strength_min:.3g}, "
                    f"{self.strength_max:.3g}], got {strength}."
                }
            )
