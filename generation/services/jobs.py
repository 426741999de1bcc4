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

import hashlib
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES, Brand
from brands.selectors import brand_role_require
from common.events import event_emit
from config.celery import app as celery_app
from content.c2pa import SigningFailed, brand_signer_get
from content.services import (
    StorageFailed,
    asset_create,
    asset_files_delete,
    asset_files_delete_for_job,
    asset_files_prepare,
    asset_files_write,
)
from generation.models import GenerationJob, WorkerThroughput

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
# A delivery of a job another live attempt holds (a batch mate of a batch in
# progress) looks again after this many seconds: if that attempt dies, this
# delivery takes the job over.
BUSY_RECHECK_SECONDS = 15


@dataclass(frozen=True)
class JobRequest:
    """One image to render: `version` of `persona`, its identity scored against
    `reference_version`, with `provenance` (persona facts) stored on the asset.

    `latent` ([num_ws, w_dim] float32), when given, is what is rendered instead
    of the version's own latent (a campaign's recipe applied to it); `noise_seed`
    picks seeded noise (None: the model's constant noise); `output_format` a
    content.formats.FORMATS key ("" keeps the generator's square output)."""

    persona: object
    version: object
    reference_version: object
    provenance: dict
    latent: np.ndarray | None = None
    noise_seed: int | None = None
    output_format: str = ""


class QuotaExceeded(ValidationError):
    """The brand's monthly image quota would be passed."""


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


def generation_jobs_submit(*, actor, brand, requests, batch_key=""):
    """Queue renders of the brand's personas in one transaction (the caller's, if
    it has one), within the brand's monthly image quota; each job is dispatched
    to the broker only once the transaction has committed. Jobs with the same
    `batch_key` may be rendered together in one forward pass."""
    with transaction.atomic():
        brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
        images_quota_check(brand=brand, images=len(requests))
        _archived_refuse(brand=brand, requests=requests)
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
                    latent=None if request.latent is None else np.asarray(request.latent, dtype="<f4").tobytes(),
                    noise_seed=request.noise_seed,
                    output_format=request.output_format,
                    batch_key=batch_key,
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


def images_this_month(*, brand):
    """Images the brand has queued this calendar month that count against its quota
    (every job but the failed and cancelled ones)."""
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (
        GenerationJob.objects.for_brand(brand)
        .filter(queued_at__gte=month_start)
        .exclude(status__in=[Status.FAILED, Status.CANCELLED])
        .count()
    )


def images_quota_check(*, brand, images):
    """Refuse `images` more this month if they would pass the brand's quota. Locks
    the brand's row until the caller's transaction ends, so two submissions
    cannot both pass the same remaining quota."""
    Brand.objects.select_for_update().filter(pk=brand.pk).first()
    used = images_this_month(brand=brand)
    if used + images > brand.monthly_image_quota:
        raise QuotaExceeded(
            f"This would queue {images} image(s), but brand {brand.name} has used {used} of its "
            f"{brand.monthly_image_quota} images this month ({max(brand.monthly_image_quota - used, 0)} left).",
            code="quota_exceeded",
        )


def _archived_refuse(*, brand, requests):
    """Archived personas (avatars.services.persona_archive) are never rendered; read
    from the database, not from the rows the caller holds, which may be stale."""
    if not requests:
        return
    personas = type(requests[0].persona).objects.for_brand(brand)
    archived = personas.filter(pk__in={r.persona.pk for r in requests}, archived_at__isnull=False).first()
    if archived is not None:
        raise ValidationError(
            f"{archived.name} (@{archived.handle}) is archived, so it is not rendered; unarchive it first.",
            code="persona_archived",
        )


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
    return not _zombie(int(pid))


def _zombie(pid):
    """Whether `pid` has exited but is not yet reaped (a signal still reaches it):
    in a container whose init does not reap, a killed pool process stays so."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")".
    return stat.rpartition(")")[2].split()[0] == "Z"


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
        # Only the row (and its brand, for giving up) until the claim is won: most
        # deliveries of a campaign's jobs find them already rendered by a batch.
        job = jobs.select_related("brand").filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None, RunOutcome(job_id=job_id, result="skipped")
        now = timezone.now()
        if job.status == Status.RUNNING and _attempt_alive(job, now):
            # Soon rather than at the lease's end: a batch holding it usually ends in seconds.
            wait = min(BUSY_RECHECK_SECONDS, max(1.0, (job.lease_expires_at - now).total_seconds()))
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
            return _with_relations(jobs.filter(pk=job.pk)).get(), None
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
        _attempt_files_delete_on_commit(jobs=[job])
        _job_failed_emit(job=job, attempts=job.attempts, error=error)
    return bool(failed)


def _attempt_files_delete_on_commit(*, jobs):
    """After commit, remove files that killed attempts of these (now finished,
    asset-less) jobs may have written before dying."""
    leftovers = [(job.brand.slug, job.pk, job.attempts) for job in jobs if job.attempts]
    if leftovers:
        transaction.on_commit(
            lambda: [
                asset_files_delete_for_job(brand_slug=slug, job_id=pk, attempts=attempts)
                for slug, pk, attempts in leftovers
            ]
        )


def generation_jobs_cancel(*, brand, job_ids):
    """Cancel the brand's jobs among `job_ids` that are queued or running, in the
    caller's transaction; returns how many. A running attempt finishes its
    forward pass, then finds its claim gone and stores nothing."""
    jobs = list(
        GenerationJob.objects.for_brand(brand)
        .select_for_update()
        .select_related("brand")
        .filter(pk__in=job_ids, status__in=[Status.QUEUED, Status.RUNNING])
    )
    GenerationJob.objects.for_brand(brand).filter(pk__in=[job.pk for job in jobs]).update(
        status=Status.CANCELLED, finished_at=timezone.now(), lease_expires_at=None
    )
    # Running or not: a queued job may have had attempts (requeued after its lease lapsed).
    _attempt_files_delete_on_commit(jobs=jobs)
    return len(jobs)


def generation_job_run(*, job_id, worker=None):
    """Process one delivery of a render task (called by the Celery task).

    The delivered job is claimed and, if it is on its first attempt and has a
    batch key (a campaign's), fresh queued jobs with the same key are claimed
    with it, up to the worker device's batch size, and rendered in one forward
    pass. A job on a later attempt is rendered alone: an item that kills its
    worker then fails on its own, not its batch mates with it. A delivery whose
    own job is already finished still renders a batch of its key's queued jobs,
    so a campaign keeps moving whichever of its messages arrives.

    Whatever goes wrong in a render is recorded on the job as a readable error;
    the worker process carries on with the next job.
    """
    worker = worker or worker_identity()
    job, outcome = generation_job_claim(job_id=job_id, worker=worker)
    if outcome is not None and outcome.result != "skipped":
        return outcome
    # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
    from generation.rendering import device_get

    batch_size = batch_size_for(device_get())
    batch = [job] if job is not None else []
    if job is None or job.attempts == 1:
        batch_key, model_id = (job.batch_key, job.model_id) if job is not None else _batch_key_of(job_id)
        if batch_key:
            batch += _batch_mates_claim(
                batch_key=batch_key, model_id=model_id, worker=worker, limit=batch_size - len(batch)
            )
    if not batch:
        return outcome
    results = jobs_render(jobs=batch, batch_size=batch_size, worker=worker)
    return RunOutcome(job_id=job_id, result=results.get(job_id, "skipped"))


def batch_size_for(device):
    return settings.GENERATION_BATCH_SIZE.get(device.split(":")[0], 1)


def _batch_key_of(job_id):
    """(batch key, model id) of a job; ("", None) if it is gone."""
    row = GenerationJob.objects.unscoped().filter(pk=job_id).values_list("batch_key", "model_id").first()
    return row or ("", None)


def _batch_mates_claim(*, batch_key, model_id, worker, limit):
    """Claim up to `limit` queued, never-attempted jobs with `batch_key` of model
    `model_id` (a forward pass renders one model; a campaign may have several),
    oldest first, in one UPDATE. Its WHERE repeats the compare-and-set of
    generation_job_claim (status queued, attempts 0), so of two workers on one
    campaign each job goes to exactly one; the claim's own time and worker name
    then find the rows this UPDATE won."""
    if limit <= 0:
        return []
    jobs = GenerationJob.objects.unscoped()
    fresh = Q(batch_key=batch_key, model_id=model_id, status=Status.QUEUED, attempts=0)
    candidate_ids = list(jobs.filter(fresh).order_by("pk").values_list("pk", flat=True)[:limit])
    now = timezone.now()
    jobs.filter(fresh, pk__in=candidate_ids).update(
        status=Status.RUNNING,
        attempts=1,
        claimed_by=worker,
        lease_expires_at=now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS),
        started_at=now,
    )
    won = jobs.filter(pk__in=candidate_ids, status=Status.RUNNING, attempts=1, claimed_by=worker, started_at=now)
    return list(_with_relations(won).order_by("pk"))


def _with_relations(jobs):
    """What rendering and storing a job reads, in one query; not the identity
    guard's calibration arrays (tens of KB per model row)."""
    heavy = ("identity_basis", "identity_centres")
    return jobs.select_related(
        "persona__brand", "persona__model", "version", "reference_version", "model", "brand"
    ).defer(*(f"{model}__{field}" for model in ("model", "persona__model") for field in heavy))


def jobs_render(*, jobs, batch_size, worker):
    """Render claimed jobs of one model in forward passes of `batch_size`, each
    distinct (latent, noise seed) once, and store each job's asset.

    Returns {job id: "succeeded" | "failed" | "skipped"} ("skipped": the job was
    cancelled or taken over meanwhile; nothing of it is stored)."""
    from generation.rendering import ModelUnavailable, identity_score, latents_render_batch
    from generation.stylegan import __version__ as engine_version

    started = time.perf_counter()
    model = jobs[0].model
    if any(job.model_id != model.pk for job in jobs):
        raise ValueError("jobs_render renders jobs of one model at a time")
    renders = {}  # (latent sha256, noise seed) -> index into the batch's inputs
    latents, noise_seeds = [], []
    for job in jobs:
        latent = job.render_latent()
        key = (hashlib.sha256(latent.tobytes()).hexdigest(), job.noise_seed)
        if key not in renders:
            renders[key] = len(latents)
            latents.append(latent)
            noise_seeds.append(job.noise_seed)
        job.render_key = key
    try:
        batch = latents_render_batch(model=model, latents=latents, noise_seeds=noise_seeds, batch_size=batch_size)
    except ModelUnavailable as exc:
        return {job.pk: _job_fail_result(job, str(exc)) for job in jobs}
    except Exception as exc:
        logger.exception("Render of generation jobs %s failed", [job.pk for job in jobs])
        error = f"Render failed: {type(exc).__name__}: {exc}"
        return {job.pk: _job_fail_result(job, error) for job in jobs}
    results = {}
    signers = {}
    prepared = {}
    # The files of every image are made in threads (Pillow, zlib and the signer
    # release the GIL), while this thread scores identities and stores in order.
    with ThreadPoolExecutor(max_workers=settings.GENERATION_ENCODE_THREADS) as pool:
        for job in jobs:
            index = renders[job.render_key]
            try:
                job.identity_consistency = identity_score(
                    model=model,
                    pixels=batch.pixels[index],
                    latent=latents[index],
                    reference_latent=job.reference_version.latent_array(),
                )
            except Exception as exc:
                logger.exception("Scoring generation job %s failed", job.pk)
                results[job.pk] = _job_fail_result(job, f"Scoring failed: {type(exc).__name__}: {exc}")
                continue
            brand = job.persona.brand
            try:
                if brand.pk not in signers:
                    signers[brand.pk] = brand_signer_get(brand=brand)
            except SigningFailed as exc:
                results[job.pk] = _job_fail_result(job, f"Signing the image failed: {exc}")
                continue
            prepared[job.pk] = pool.submit(
                _job_files_prepare, job=job, pixels=batch.pixels[index], signer=signers[brand.pk]
            )
        for job in jobs:
            if job.pk in results:
                continue
            item_started = time.perf_counter()
            try:
                files = prepared[job.pk].result()
            except StorageFailed as exc:
                results[job.pk] = _job_fail_result(job, str(exc))
                continue
            except Exception as exc:
                logger.exception("Encoding generation job %s failed", job.pk)
                results[job.pk] = _job_fail_result(job, f"Encoding failed: {type(exc).__name__}: {exc}")
                continue
            index = renders[job.render_key]
            provenance = {
                "generator": "persona-studio stylegan",
                "engine_version": engine_version,
                "model": model.slug,
                "model_sha256": model.sha256,
                **job.provenance,
                "job": job.pk,
                "rendered_latent_sha256": job.render_key[0],
                "noise_mode": "const" if job.noise_seed is None else "seeded",
                "noise_seed": job.noise_seed,
                "truncation_centre": model.truncation_centre,
                "output_format": job.output_format or "master",
                "device": batch.device,
                "dtype": batch.dtype,
                "batch_size": batch_size,
                "batch_images": len(latents),
                # The size of the forward pass this image was in: the convolution algorithm,
                # hence the last bits, depend on it (asset verification renders at this size).
                "forward_batch_size": min(batch_size, len(latents) - index // batch_size * batch_size),
            }
            timings = {
                "queue_wait_ms": round((job.started_at - job.queued_at).total_seconds() * 1000, 1),
                "load_ms": batch.load_ms,
                "render_ms": round(batch.render_ms / len(jobs), 1),
                "batch_render_ms": batch.render_ms,
                "encode_ms": files.encode_ms,
                "device": batch.device,
            }
            asset = generation_job_succeed(
                job=job,
                attempt=job.attempts,
                prepared=files,
                identity_consistency=job.identity_consistency,
                provenance=provenance,
                timings=timings,
                save_started=item_started,
            )
            results[job.pk] = "succeeded" if asset is not None else _outcome_after_store_refused(job)
    stored = sum(result == "succeeded" for result in results.values())
    if stored:
        _throughput_record(
            worker=worker, model=model, batch=batch, batch_size=batch_size, images=stored,
            seconds=time.perf_counter() - started,
        )  # fmt: skip
    return results


def _job_files_prepare(*, job, pixels, signer):
    from generation.rendering import pixels_to_png

    started = time.perf_counter()
    files = asset_files_prepare(
        job=job, attempt=job.attempts, png_bytes=pixels_to_png(pixels), output_format=job.output_format,
        signer=signer,
    )  # fmt: skip
    return replace(files, encode_ms=round((time.perf_counter() - started) * 1000, 1))


def _job_fail_result(job, error):
    generation_job_fail(job=job, attempt=job.attempts, error=error)
    return "failed"


def _outcome_after_store_refused(job):
    status = GenerationJob.objects.unscoped().filter(pk=job.pk).values_list("status", flat=True).first()
    return "failed" if status == Status.FAILED else "skipped"


def _throughput_record(*, worker, model, batch, batch_size, images, seconds):
    WorkerThroughput.objects.update_or_create(
        worker=worker.rpartition(":")[0] or worker,
        model=model,
        device=batch.device,
        batch_size=batch_size,
        defaults={"dtype": batch.dtype, "images": images, "seconds": seconds, "measured_at": timezone.now()},
    )


def generation_job_succeed(*, job, attempt, prepared, identity_consistency, provenance, timings, save_started):
    """Store the job's prepared files and asset and mark the job succeeded, if
    `attempt` still holds the claim; returns the asset, or None if it did not
    (the job was cancelled or taken over: its files are removed, nothing refers
    to them) or storage failed (the job is failed with the reason)."""
    try:
        files = asset_files_write(job=job, attempt=attempt, prepared=prepared)
    except StorageFailed as exc:
        generation_job_fail(job=job, attempt=attempt, error=str(exc))
        return None
    asset = None
    try:
        with transaction.atomic():
            timings = {**timings, "save_ms": round((time.perf_counter() - save_started) * 1000, 1)}
            succeeded = (
                GenerationJob.objects.unscoped()
                .filter(pk=job.pk, status=Status.RUNNING, attempts=attempt)
                .update(
                    status=Status.SUCCEEDED, finished_at=timezone.now(), timings=timings, error="",
                    lease_expires_at=None,
                )
            )  # fmt: skip
            if succeeded:
                asset = asset_create(
                    actor=None,
                    persona=job.persona,
                    version=job.version,
                    job=job,
                    files=files,
                    identity_consistency=identity_consistency,
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
            asset_files_delete(files=files)
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
        # Files an earlier attempt wrote before it was killed are otherwise removed only
        # by a later attempt's asset_files_write; this job stores none.
        _attempt_files_delete_on_commit(jobs=[job])
        _job_failed_emit(job=job, attempts=attempt, error=error)
    return bool(failed)


def _job_failed_emit(*, job, attempts, error):
    """job.failed (webhooks, #16; campaigns hear it to tell when a campaign is done),
    emitted after the failure commits."""
    event_emit(
        name="job.failed",
        brand=job.brand,
        payload={
            "job_id": job.pk,
            "persona_id": job.persona_id,
            "version_id": job.version_id,
            "status": Status.FAILED.value,
            "attempts": attempts,
            "error": error,
        },
    )


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
