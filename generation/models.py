from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from brands.tenancy import BrandScopedManager


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


class GenerationJob(models.Model):
    """One request to render a persona, processed by a Celery task.

    attempts counts claims by workers; see generation.services.generation_job_claim
    for how a claim is made and why it cannot render a job twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="generation_jobs")
    persona = models.ForeignKey("avatars.Persona", on_delete=models.CASCADE, related_name="generation_jobs")
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
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="generationjob_max_attempts_gte_1"),
        ]

    def __str__(self):
        return f"Job {self.pk} ({self.status}) for {self.persona_id}"

    @property
    def is_finished(self):
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
