"""Generator registry and render jobs.

A render job's life: generation_job_submit (web, an actor) → Celery task
generation.render_job on queue "gpu" → generation_job_run (worker):
claim → render with the engine → store the asset → succeeded, or failed with
a readable error.
"""

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require
from config.celery import app as celery_app
from content.services import asset_create, asset_file_save

from .layer_groups import DEFAULT_IDENTITY_GROUP, layer_groups_default, layer_groups_validate
from .models import Direction, GenerationJob, GeneratorModel
from .selectors import directions_for_brand

logger = logging.getLogger(__name__)

RENDER_TASK = "generation.render_job"
DIRECTIONS_TASK = "generation.compute_directions"
Status = GenerationJob.Status


@dataclass(frozen=True)
class RunOutcome:
    """What became of one delivery of a render task.

    result: "succeeded", "failed", "skipped" (the job is gone or finished, or
    another attempt took it over) or "busy" (a live attempt holds the job;
    look again after `retry_after` seconds).
    """

    job_id: int
    result: str
    retry_after: float | None = None


def worker_identity():
    return f"{socket.gethostname()}:{os.getpid()}"


# --- registry ----------------------------------------------------------------


# Two personas whose identities are closer than this fraction of the median
# distance between random personas (seeds at ψ 0.7) count as the same face.
IDENTITY_MIN_DISTANCE_FRACTION = 0.25


def generator_model_register(
    *, actor, name, slug, directory, licence_note, class_names=(), layer_groups=None, identity_group=None
):
    """Register a checkpoint directory (absolute, or relative to MODELS_ROOT).

    The checkpoint is loaded once before anything is saved, so a registered
    model is known to work and its sha256 pins the exact weights. Layer groups
    default to coarse / middle / fine with "middle" as the identity group.
    """
    # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
    from generation.rendering import ModelUnavailable, checkpoint_describe, identity_calibrate

    if GeneratorModel.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A generator model with the slug {slug!r} already exists."})
    model = GeneratorModel(name=name, slug=slug, directory=str(directory), licence_note=licence_note)
    try:
        info = checkpoint_describe(directory=model.path)
    except ModelUnavailable as exc:
        raise ValidationError({"directory": str(exc)}) from exc
    model.sha256, model.config, model.num_ws, model.w_dim = info.sha256, info.config, info.num_ws, info.w_dim
    model.class_names = _class_names_validate(list(class_names), c_dim=model.c_dim)
    model.layer_groups = layer_groups or layer_groups_default(model.num_ws)
    model.identity_group = identity_group or DEFAULT_IDENTITY_GROUP
    layer_groups_validate(model.layer_groups, num_ws=model.num_ws, identity_group=model.identity_group)
    calibration = identity_calibrate(model=model)
    model.identity_basis = calibration.basis.astype("<f4").tobytes()
    model.identity_min_distance = IDENTITY_MIN_DISTANCE_FRACTION * calibration.typical_distance
    model.full_clean()
    with transaction.atomic():
        model.save()
        audit_record(
            actor=actor,
            brand=None,
            action="generator_model.registered",
            target=model,
            after={"slug": slug, "directory": str(directory), "sha256": info.sha256, "layer_groups": model.layer_groups},
        )
        # Directions take seconds to minutes: a worker on the default queue finds them.
        transaction.on_commit(lambda: celery_app.send_task(DIRECTIONS_TASK, args=[model.pk]))
    return model


def directions_compute(*, model_id):
    """Compute and store the model's unsupervised (and, for a conditional
    model, class-supervised) directions. Idempotent: directions already stored
    under a name are kept, so library items that use them stay valid."""
    from generation.rendering import directions_compute_for

    model = GeneratorModel.objects.filter(pk=model_id).first()
    if model is None:
        return 0
    found = directions_compute_for(model=model)
    with transaction.atomic():
        existing = set(model.directions.filter(brand=None).values_list("name", flat=True))
        new = [
            Direction(model=model, **{**d, "vector": np.ascontiguousarray(d["vector"], dtype="<f4").tobytes()})
            for d in found
            if d["name"] not in existing
        ]
        Direction.objects.bulk_create(new)
        audit_record(
            actor=None,
            brand=None,
            action="generator_model.directions_computed",
            target=model,
            after={"created": len(new), "kept": len(existing)},
        )
    return len(new)


def _class_names_validate(class_names, *, c_dim):
    if not class_names:
        return [f"class {i}" for i in range(c_dim)]
    if len(class_names) != c_dim:
        raise ValidationError(
            {"class_names": f"The model has {c_dim} classes, but {len(class_names)} class names were given."}
        )
    if any(not isinstance(n, str) or not n.strip() for n in class_names) or len(set(class_names)) != len(class_names):
        raise ValidationError({"class_names": "Class names must be distinct, non-empty text."})
    return [n.strip() for n in class_names]


LABELLED_EXAMPLES_MIN = 3


@transaction.atomic
def direction_teach(*, actor, brand, model, name, layer_group, positive_seeds, negative_seeds, class_index=None):
    """A brand's own direction, fitted (InterFaceGAN-style) on personas it labelled:
    seeds that show a trait against seeds that do not. Offered to that brand only."""
    from generation.rendering import direction_from_labelled_seeds

    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    errors = {}
    if layer_group not in {g["name"] for g in model.layer_groups}:
        errors["layer_group"] = f"Model {model.slug} has no layer group {layer_group!r}."
    for field, seeds in (("positive_seeds", positive_seeds), ("negative_seeds", negative_seeds)):
        if len(set(seeds)) < LABELLED_EXAMPLES_MIN:
            errors[field] = f"Label at least {LABELLED_EXAMPLES_MIN} different seeds on each side."
    if set(positive_seeds) & set(negative_seeds):
        errors["negative_seeds"] = "A seed cannot be labelled both ways."
    if directions_for_brand(brand=brand, model=model).filter(name=name).exists():
        errors["name"] = f"Model {model.slug} already has a direction named {name!r}."
    if errors:
        raise ValidationError(errors)
    try:
        fitted = direction_from_labelled_seeds(
            model=model, positive_seeds=positive_seeds, negative_seeds=negative_seeds, class_index=class_index
        )
    except ValueError as exc:
        raise ValidationError({"class_index": str(exc)}) from exc
    direction = Direction.objects.create(
        model=model,
        brand=brand,
        name=name,
        layer_group=layer_group,
        kind=fitted["kind"],
        vector=np.ascontiguousarray(fitted["vector"], dtype="<f4").tobytes(),
        strength_min=fitted["strength_min"],
        strength_max=fitted["strength_max"],
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="direction.taught",
        target=direction,
        after={"model": model.slug, "name": name, "layer_group": layer_group,
               "positive_seeds": sorted(set(positive_seeds)), "negative_seeds": sorted(set(negative_seeds))},
    )  # fmt: skip
    return direction


def generator_model_destination_check(*, slug):
    """MODELS_ROOT/<slug>, after checking that neither the slug nor the directory is taken."""
    if GeneratorModel.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A generator model with the slug {slug!r} already exists."})
    destination = Path(settings.MODELS_ROOT) / slug
    if destination.exists():
        raise ValidationError({"slug": f"{destination} already exists; choose another slug or move it away."})
    return destination


def generator_model_import(*, actor, source, name, slug, licence_note, class_names=()):
    """Import a checkpoint into MODELS_ROOT/<slug> and register it.

    `source` is a StyleGAN2-ADA / StyleGAN3 .pkl (read by the engine's restricted
    unpickler, converted to safetensors) or one of our checkpoint directories
    (copied). Operators only: the caller must be staff (or None for the shell).
    Unsupervised directions are computed after commit on the default queue.
    """
    from generation.rendering import ModelUnavailable, checkpoint_import

    if actor is not None and not actor.is_staff:
        raise PermissionDenied("Only operators (staff) may import generator models.")
    if not licence_note.strip():
        raise ValidationError({"licence_note": "A licence note is required: where the weights come from and what they may be used for."})
    destination = generator_model_destination_check(slug=slug)
    try:
        checkpoint_import(source=Path(source), directory=destination)
    except ModelUnavailable as exc:
        raise ValidationError({"source": str(exc)}) from exc
    try:
        return generator_model_register(
            actor=actor, name=name, slug=slug, directory=slug, licence_note=licence_note, class_names=class_names
        )
    except ValidationError:
        shutil.rmtree(destination, ignore_errors=True)
        raise


@transaction.atomic
def generator_model_configure(
    *, actor, model, layer_groups, identity_group, class_names, licence_note, identity_min_distance
):
    """Rename or re-cut a model's layer groups, name its classes, edit its
    licence note and its identity guard distance."""
    layer_groups_validate(layer_groups, num_ws=model.num_ws, identity_group=identity_group)
    if not identity_min_distance >= 0:
        raise ValidationError({"identity_min_distance": "The identity guard distance must be 0 (off) or more."})
    before = {
        "layer_groups": model.layer_groups,
        "identity_group": model.identity_group,
        "class_names": model.class_names,
        "licence_note": model.licence_note,
        "identity_min_distance": model.identity_min_distance,
    }
    model.layer_groups, model.identity_group = layer_groups, identity_group
    model.class_names = _class_names_validate(list(class_names), c_dim=model.c_dim)
    model.licence_note = licence_note
    model.identity_min_distance = identity_min_distance
    model.full_clean()
    model.save()
    audit_record(
        actor=actor,
        brand=None,
        action="generator_model.configured",
        target=model,
        before=before,
        after={
            "layer_groups": layer_groups,
            "identity_group": identity_group,
            "class_names": model.class_names,
            "licence_note": licence_note,
            "identity_min_distance": identity_min_distance,
        },
    )
    return model


# --- submitting ----------------------------------------------------------------


@transaction.atomic
def generation_job_submit(*, actor, brand, persona, version=None):
    """Queue a render of one of the brand's personas, pinned to `version`
    (default: the current one); the task is sent only once the job row is
    committed, so a worker never looks for a missing row."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if persona.brand_id != brand.pk:
        raise ValidationError(
            f"Persona {persona.pk} does not belong to brand {brand.slug}; a brand can only render its own personas."
        )
    version = version or persona.current_version
    if version.persona_id != persona.pk:
        raise ValidationError({"version": f"Version {version.pk} is not a version of @{persona.handle}."})
    job = GenerationJob.objects.create(
        brand=brand,
        persona=persona,
        version=version,
        model=persona.model,
        requested_by=actor,
        max_attempts=settings.GENERATION_MAX_ATTEMPTS,
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="generation_job.submitted",
        target=job,
        after={"persona": persona.handle, "version": version.number, "model": persona.model.slug},
    )
    transaction.on_commit(lambda: generation_job_enqueue(job_id=job.pk))
    return job


def generation_job_enqueue(*, job_id):
    # By name, so that web processes need not import the task module; the
    # route to queue "gpu" comes from CELERY_TASK_ROUTES.
    celery_app.send_task(RENDER_TASK, args=[job_id])


# --- running (worker side) -----------------------------------------------------


def _attempt_alive(job, now):
    """Could the attempt that holds this running job still be working on it?

    Past its lease, no: the lease outlasts Celery's hard time limit, which
    kills any attempt still running. Within the lease we can only look at
    processes on our own host: a claimant whose process is gone (a prefork
    child killed mid-render) is dead. A claimant on another host is trusted
    until its lease ends.
    """
    if job.lease_expires_at is None or job.lease_expires_at <= now:
        return False
    host, _, pid = job.claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def generation_job_claim(*, job_id, worker):
    """Take a job for one render attempt: (job, None) if claimed, else (None, outcome).

    The claim is a conditional UPDATE that succeeds only if the row still has
    the status and attempt count we read:

        UPDATE ... SET status='running', attempts=n+1, claimed_by=worker, lease_expires_at=...
        WHERE id=job_id AND status=<read> AND attempts=n

    `attempts` works as a version number: of two deliveries racing for the
    same job, exactly one UPDATE matches. A delivery that finds the job:
    - finished or deleted: does nothing (a task delivered twice renders once);
    - running, and the holding attempt is alive (see _attempt_alive): does
      nothing now and asks to be retried when the lease ends;
    - running, but the holding attempt is dead: this is the redelivery that
      acks_late + reject_on_worker_lost give after a worker died mid-render.
      It claims again, counting one more attempt, unless attempts has
      reached max_attempts: then the job is failed with "worker lost" instead
      of rendering (a job that kills its worker is not retried for ever).
    Every render's result is later written only if attempts still equals the
    attempt's own number, so an attempt that lost its claim cannot overwrite
    the result of the attempt that took over.
    """
    jobs = GenerationJob.objects.unscoped()
    while True:
        job = jobs.select_related("persona__brand", "version", "model", "brand").filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None, RunOutcome(job_id=job_id, result="skipped")
        now = timezone.now()
        if job.status == Status.RUNNING and _attempt_alive(job, now):
            wait = max(1.0, (job.lease_expires_at - now).total_seconds())
            return None, RunOutcome(job_id=job_id, result="busy", retry_after=wait)
        if job.attempts >= job.max_attempts:
            if _job_give_up(job=job):
                return None, RunOutcome(job_id=job_id, result="failed")
            continue
        claimed = jobs.filter(pk=job.pk, status=job.status, attempts=job.attempts).update(
            status=Status.RUNNING,
            attempts=job.attempts + 1,
            claimed_by=worker,
            lease_expires_at=now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS),
            started_at=now,
        )
        if claimed:
            job.status, job.attempts, job.claimed_by, job.started_at = Status.RUNNING, job.attempts + 1, worker, now
            return job, None
        # Another delivery changed the row between our read and our update.


def _lost_worker_error(job):
    return (
        f"Gave up after {job.attempts} attempts: the worker rendering this job was lost each time "
        f"(killed, crashed or past the {settings.CELERY_TASK_TIME_LIMIT} s hard time limit)."
    )


@transaction.atomic
def _job_give_up(*, job):
    """Fail a job whose attempts are used up; False if the row changed meanwhile."""
    error = _lost_worker_error(job)
    failed = (
        GenerationJob.objects.unscoped()
        .filter(pk=job.pk, status=job.status, attempts=job.attempts)
        .update(status=Status.FAILED, error=error, finished_at=timezone.now(), lease_expires_at=None)
    )
    if failed:
        audit_record(actor=None, brand=job.brand, action="generation_job.failed", target=job, after={"error": error})
    return bool(failed)


def generation_job_run(*, job_id, worker=None):
    """Process one delivery of a render task (called by the Celery task).

    Whatever goes wrong in the render is recorded on the job as a readable
    error; the worker process carries on with the next job.
    """
    job, outcome = generation_job_claim(job_id=job_id, worker=worker or worker_identity())
    if outcome is not None:
        return outcome
    attempt = job.attempts
    # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
    from generation.rendering import ModelUnavailable, latent_render

    persona, version, model = job.persona, job.version, job.model
    provenance = {
        "generator": "persona-studio stylegan",
        "model": model.slug,
        "model_sha256": model.sha256,
        "persona": persona.handle,
        "version": version.number,
        "operation": version.operation,
        "latent_sha256": version.sha256,
        "seed": persona.seed,
        "truncation_psi": persona.truncation_psi,
        "job": job.pk,
        "noise_mode": "const",
    }
    reference = _reference_version(persona)
    provenance["identity_reference_version"] = reference.number
    try:
        image = latent_render(
            model=model,
            latent=version.latent_array(),
            text_chunks={"AI-Generated": "true", "Software": "Persona Studio", "Model": model.slug},
            reference_latent=reference.latent_array(),
        )
    except ModelUnavailable as exc:
        generation_job_fail(job=job, attempt=attempt, error=str(exc))
        return RunOutcome(job_id=job_id, result="failed")
    except Exception as exc:
        logger.exception("Render of generation job %s failed", job.pk)
        generation_job_fail(job=job, attempt=attempt, error=f"Render failed: {type(exc).__name__}: {exc}")
        return RunOutcome(job_id=job_id, result="failed")
    asset = generation_job_succeed(job=job, attempt=attempt, image=image, provenance=provenance)
    return RunOutcome(job_id=job_id, result="succeeded" if asset is not None else "skipped")


def _reference_version(persona):
    """The version whose render an asset's identity consistency is scored
    against: the persona's first, the face the brand chose."""
    return persona.versions.for_brand(persona.brand).order_by("number").first()


def generation_job_succeed(*, job, attempt, image, provenance):
    """Store the image as an Asset and mark the job succeeded, if `attempt`
    still holds the claim; returns the asset, or None if it did not."""
    save_started = time.perf_counter()
    image_name = asset_file_save(persona=job.persona, png_bytes=image.png_bytes)
    asset = None
    try:
        with transaction.atomic():
            finished = timezone.now()
            timings = {
                "queue_wait_ms": round((job.started_at - job.queued_at).total_seconds() * 1000, 1),
                **image.timings,
                "save_ms": round((time.perf_counter() - save_started) * 1000, 1),
            }
            succeeded = (
                GenerationJob.objects.unscoped()
                .filter(pk=job.pk, status=Status.RUNNING, attempts=attempt)
                .update(status=Status.SUCCEEDED, finished_at=finished, timings=timings, error="", lease_expires_at=None)
            )
            if succeeded:
                asset = asset_create(
                    actor=None,
                    persona=job.persona,
                    version=job.version,
                    job=job,
                    image_name=image_name,
                    width=image.width,
                    height=image.height,
                    identity_consistency=image.identity_consistency,
                    provenance=provenance,
                )
                audit_record(
                    actor=None,
                    brand=job.brand,
                    action="generation_job.succeeded",
                    target=job,
                    after={"asset": asset.pk, "attempt": attempt, "timings": timings},
                )
    finally:
        if asset is None:
            default_storage.delete(image_name)
    return asset


@transaction.atomic
def generation_job_fail(*, job, attempt, error):
    """Mark the job failed with `error`, if `attempt` still holds the claim."""
    failed = (
        GenerationJob.objects.unscoped()
        .filter(pk=job.pk, status=Status.RUNNING, attempts=attempt)
        .update(status=Status.FAILED, error=error, finished_at=timezone.now(), lease_expires_at=None)
    )
    if failed:
        audit_record(
            actor=None,
            brand=job.brand,
            action="generation_job.failed",
            target=job,
            after={"attempt": attempt, "error": error},
        )
    return bool(failed)


def generation_jobs_expire_leases():
    """Recover running jobs whose lease has lapsed (run by beat every minute).

    Such a job lost its worker where no redelivery came back for it (a whole
    worker host died, or the hard time limit killed the attempt and Celery
    acknowledged the message). It goes back to the queue, or fails once its
    attempts are used up. Returns how many jobs were requeued and failed.
    """
    now = timezone.now()
    stale = (
        GenerationJob.objects.unscoped()
        .filter(status=Status.RUNNING, lease_expires_at__lt=now)
        .select_related("brand")
    )
    requeued = failed = 0
    for job in stale:
        if job.attempts >= job.max_attempts:
            failed += _job_give_up(job=job)
        else:
            requeued += _job_requeue(job=job, now=now)
    return {"requeued": requeued, "failed": failed}


@transaction.atomic
def _job_requeue(*, job, now):
    requeued = (
        GenerationJob.objects.unscoped()
        .filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts, lease_expires_at__lt=now)
        .update(status=Status.QUEUED, claimed_by="", lease_expires_at=None)
    )
    if requeued:
        audit_record(
            actor=None,
            brand=job.brand,
            action="generation_job.requeued",
            target=job,
            before={"status": Status.RUNNING, "claimed_by": job.claimed_by},
            after={"status": Status.QUEUED, "attempts": job.attempts},
        )
        transaction.on_commit(lambda: generation_job_enqueue(job_id=job.pk))
    return bool(requeued)
