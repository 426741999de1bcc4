"""Render jobs.

A render job's life: generation_jobs_submit (in bulk, in one transaction, for
an actor) → dispatched to Celery task generation.render_job on queue "gpu"
after commit → generation_job_run (worker): claim → render with the engine →
store the asset → succeeded, or failed with a readable error.

The job row is the source of truth and its own outbox: a job is dispatched
after its transaction commits, and one the broker did not accept (broker
down, process killed before sending) stays queued with a reason and is sent
again by beat (generation_jobs_dispatch_pending) with backoff. A job sent
twice still renders once: the worker's claim is a compare-and-set.
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
from django.db.models import F, Q
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require
from config.celery import app as celery_app
from content.services import asset_create, asset_file_save
from generation.models import GenerationJob

logger = logging.getLogger(__name__)

RENDER_TASK = "generation.render_job"
Status = GenerationJob.Status

# A job not yet accepted by the broker this long after it was queued is sent
# again by the sweeper (its web process may have died before sending).
DISPATCH_GRACE = timedelta(seconds=30)
DISPATCH_BACKOFF_MAX_SECONDS = 300
# A job the broker accepted but no worker has claimed this long after is sent
# again: its message may be gone (a broker restarted without persistence, a
# purge). A duplicate is harmless: the claim renders a job once.
REDISPATCH_AFTER = timedelta(minutes=15)
DISPATCH_SWEEP_LIMIT = 500


@dataclass(frozen=True)
class JobRequest:
    """One image to render: `version` of `persona`, its identity scored against
    `reference_version`, with `provenance` (persona facts) stored on the asset."""

    persona: object
    version: object
    reference_version: object
    provenance: dict


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


# --- submitting ----------------------------------------------------------------


def generation_jobs_submit(*, actor, brand, requests):
    """Queue renders of the brand's personas in one transaction; each job is
    dispatched to the broker only once the transaction has committed."""
    with transaction.atomic():
        brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
        jobs = []
        for request in requests:
            _job_request_check(request=request, brand=brand)
            jobs.append(
                GenerationJob(
                    brand=brand,
                    persona=request.persona,
                    version=request.version,
                    reference_version=request.reference_version,
                    provenance=request.provenance,
                    model=request.persona.model,
                    requested_by=actor,
                    max_attempts=settings.GENERATION_MAX_ATTEMPTS,
                )
            )
        jobs = GenerationJob.objects.bulk_create(jobs)
        for job in jobs:
            audit_record(
                actor=actor,
                brand=brand,
                action="generation_job.submitted",
                target=job,
                after={"persona": job.persona.handle, "version": job.version.number, "model": job.model.slug},
            )
        job_ids = [job.pk for job in jobs]
        transaction.on_commit(lambda: generation_jobs_dispatch(job_ids=job_ids))
    return jobs


def _job_request_check(*, request, brand):
    persona, version = request.persona, request.version
    if persona.brand_id != brand.pk:
        raise ValidationError(
            f"Persona {persona.pk} does not belong to brand {brand.slug}; a brand can only render its own personas."
        )
    for field, pinned in (("version", version), ("reference_version", request.reference_version)):
        if pinned.persona_id != persona.pk:
            raise ValidationError({field: f"Version {pinned.pk} is not a version of @{persona.handle}."})


# --- dispatching (the outbox) -------------------------------------------------


def generation_jobs_dispatch(*, job_ids):
    """Send each job's task to the broker and record which were accepted.

    Runs outside any transaction (after commit, or from the sweeper). A broker
    that cannot be reached fails fast (CELERY_BROKER_TRANSPORT_OPTIONS bound
    the connection, and publishing does not retry); the first failure marks
    this job and the rest of the batch as waiting, for the sweeper to retry."""
    accepted = []
    try:
        for index, job_id in enumerate(job_ids):
            try:
                # By name, so that web processes need not import the task module;
                # the route to queue "gpu" comes from CELERY_TASK_ROUTES.
                celery_app.send_task(RENDER_TASK, args=[job_id], retry=False)
            except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the job waits for a retry
                waiting = job_ids[index:]
                logger.warning("Task queue unreachable; %d render job(s) wait for a retry: %s", len(waiting), exc)
                _jobs_dispatch_failed(job_ids=waiting, error=f"{type(exc).__name__}: {exc}")
                return
            accepted.append(job_id)
    finally:
        GenerationJob.objects.unscoped().filter(pk__in=accepted).update(
            dispatched_at=timezone.now(), dispatch_error="", next_dispatch_at=None
        )


def _jobs_dispatch_failed(*, job_ids, error):
    now = timezone.now()
    for job in GenerationJob.objects.unscoped().filter(pk__in=job_ids, status=Status.QUEUED, dispatched_at=None):
        backoff = min(DISPATCH_BACKOFF_MAX_SECONDS, 5 * 2**job.dispatch_attempts)
        GenerationJob.objects.unscoped().filter(pk=job.pk).update(
            dispatch_attempts=F("dispatch_attempts") + 1,
            next_dispatch_at=now + timedelta(seconds=backoff),
            dispatch_error=f"The task queue is unreachable ({error}); sending again in {backoff} s.",
        )


def generation_jobs_dispatch_pending():
    """Send again the queued jobs the broker has not accepted (run by beat):
    those whose backoff is over, those never sent whose web process died
    before sending, and those accepted so long ago that their message may
    have been lost. Returns how many were tried."""
    now = timezone.now()
    not_accepted = Q(dispatched_at=None) & (
        Q(next_dispatch_at__lte=now) | Q(next_dispatch_at=None, queued_at__lte=now - DISPATCH_GRACE)
    )
    pending = list(
        GenerationJob.objects.unscoped()
        .filter(status=Status.QUEUED)
        .filter(not_accepted | Q(dispatched_at__lte=now - REDISPATCH_AFTER))
        .order_by("queued_at")
        .values_list("pk", flat=True)[:DISPATCH_SWEEP_LIMIT]
    )
    generation_jobs_dispatch(job_ids=pending)
    return len(pending)


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
        job = (
            jobs.select_related("persona__brand", "version", "reference_version", "model", "brand")
            .filter(pk=job_id)
            .first()
        )
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

    model = job.model
    provenance = {
        "generator": "persona-studio stylegan",
        "model": model.slug,
        "model_sha256": model.sha256,
        **job.provenance,
        "job": job.pk,
        "noise_mode": "const",
    }
    try:
        image = latent_render(
            model=model,
            latent=job.version.latent_array(),
            text_chunks={"AI-Generated": "true", "Software": "Persona Studio", "Model": model.slug},
            reference_latent=job.reference_version.latent_array(),
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
        GenerationJob.objects.unscoped().filter(status=Status.RUNNING, lease_expires_at__lt=now).select_related("brand")
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
        .update(
            status=Status.QUEUED,
            claimed_by="",
            lease_expires_at=None,
            # Back in the outbox until the broker accepts the send below: if that
            # fails, or this process dies first, the sweeper sends it again.
            dispatched_at=None,
            dispatch_error="",
            next_dispatch_at=now + DISPATCH_GRACE,
        )
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
        transaction.on_commit(lambda: generation_jobs_dispatch(job_ids=[job.pk]))
    return bool(requeued)
