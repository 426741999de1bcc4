"""Generator registry and render jobs.

A render job's life: generation_job_submit (web, an actor) → Celery task
generation.render_job on queue "gpu" → generation_job_run (worker):
claim → render with the engine → store the asset → succeeded, or failed with
a readable error.
"""

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require
from config.celery import app as celery_app
from content.services import asset_create, asset_file_save

from .models import GenerationJob, GeneratorModel

logger = logging.getLogger(__name__)

RENDER_TASK = "generation.render_job"
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


def generator_model_register(*, actor, name, slug, directory, licence_note):
    """Register a checkpoint directory (absolute, or relative to MODELS_ROOT).

    The checkpoint is loaded once before anything is saved, so a registered
    model is known to work and its sha256 pins the exact weights.
    """
    # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
    from generation.rendering import ModelUnavailable, checkpoint_describe

    if GeneratorModel.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A generator model with the slug {slug!r} already exists."})
    model = GeneratorModel(name=name, slug=slug, directory=str(directory), licence_note=licence_note)
    try:
        info = checkpoint_describe(directory=model.path)
    except ModelUnavailable as exc:
        raise ValidationError({"directory": str(exc)}) from exc
    model.sha256, model.config, model.num_ws, model.w_dim = info.sha256, info.config, info.num_ws, info.w_dim
    model.full_clean()
    with transaction.atomic():
        model.save()
        audit_record(
            actor=actor,
            brand=None,
            action="generator_model.registered",
            target=model,
            after={"slug": slug, "directory": str(directory), "sha256": info.sha256},
        )
    return model


# --- submitting ----------------------------------------------------------------


@transaction.atomic
def generation_job_submit(*, actor, brand, persona):
    """Queue a render of one of the brand's personas; the task is sent only
    once the job row is committed, so a worker never looks for a missing row."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if persona.brand_id != brand.pk:
        raise ValidationError(
            f"Persona {persona.pk} does not belong to brand {brand.slug}; a brand can only render its own personas."
        )
    job = GenerationJob.objects.create(
        brand=brand,
        persona=persona,
        model=persona.model,
        requested_by=actor,
        max_attempts=settings.GENERATION_MAX_ATTEMPTS,
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="generation_job.submitted",
        target=job,
        after={"persona": persona.handle, "model": persona.model.slug},
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
        job = jobs.select_related("persona__brand", "model", "brand").filter(pk=job_id).first()
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

    persona, model = job.persona, job.model
    provenance = {
        "generator": "persona-studio stylegan",
        "model": model.slug,
        "model_sha256": model.sha256,
        "persona": persona.handle,
        "latent_sha256": persona.latent_sha256,
        "seed": persona.seed,
        "truncation_psi": persona.truncation_psi,
        "job": job.pk,
        "noise_mode": "const",
    }
    try:
        image = latent_render(
            model=model,
            latent=persona.latent_array(),
            text_chunks={"AI-Generated": "true", "Software": "Persona Studio", "Model": model.slug},
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
                    job=job,
                    image_name=image_name,
                    width=image.width,
                    height=image.height,
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
