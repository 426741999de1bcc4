import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from audit.models import AuditEvent
from avatars.services import persona_create_from_seed, persona_render_submit
from content.c2pa import brand_signer_get
from content.formats import TRAINED_ALGORITHMIC_MEDIA, disclosure_read
from content.models import Asset
from content.services import asset_files_prepare
from generation.models import GenerationJob
from generation.rendering import latents_render_batch, pixels_to_png
from generation.services.jobs import (
    BUSY_RECHECK_SECONDS,
    generation_job_claim,
    generation_job_run,
    generation_job_succeed,
    generation_jobs_expire_leases,
)
from generation.services.registry import generator_model_register

Status = GenerationJob.Status


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def claim_by_dead_worker(job, *, attempts):
    GenerationJob.objects.unscoped().filter(pk=job.pk).update(
        status=Status.RUNNING,
        attempts=attempts,
        claimed_by=f"{socket.gethostname()}:{dead_pid()}",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )


@pytest.fixture
def job(owner, brand, persona):
    return persona_render_submit(actor=owner, brand=brand, persona=persona)


def test_it_queues_the_render_task_only_after_commit(owner, brand, persona, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    assert len(callbacks) == 1
    assert (job.status, job.attempts, job.model) == (Status.QUEUED, 0, persona.model)
    assert AuditEvent.objects.for_brand(brand).filter(action="generation_job.submitted", target_id=str(job.pk)).exists()


def test_it_refuses_a_job_for_another_brands_persona(owner, brand, other_persona):
    with pytest.raises(ValidationError, match="does not belong to brand acme"):
        persona_render_submit(actor=owner, brand=brand, persona=other_persona)
    assert not GenerationJob.objects.unscoped().exists()


def test_it_refuses_jobs_from_viewers_and_outsiders(viewer, outsider, brand, persona):
    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            persona_render_submit(actor=user, brand=brand, persona=persona)


def test_it_renders_a_job_into_a_stored_asset(job, brand, persona, media_root):
    assert generation_job_run(job_id=job.pk).result == "succeeded"

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (Status.SUCCEEDED, 1, "")
    assert job.started_at <= job.finished_at
    assert {"queue_wait_ms", "load_ms", "render_ms", "encode_ms", "save_ms"} <= job.timings.keys()
    asset = Asset.objects.for_brand(brand).get(job=job)
    assert asset.persona == persona and (asset.width, asset.height) == (64, 64)
    assert default_storage.exists(asset.image.name)
    assert (media_root / asset.image.name).is_file()
    with Image.open(asset.image.path) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
        assert image.text["AI-Generated"] == "true"
    assert asset.ai_generated
    assert asset.metadata["provenance"]["latent_sha256"] == persona.latent_sha256
    assert asset.metadata["provenance"]["model_sha256"] == persona.model.sha256
    assert AuditEvent.objects.for_brand(brand).filter(action="generation_job.succeeded").exists()


def test_it_writes_the_ai_disclosure_into_the_stored_file(job, brand, persona, media_root):
    assert generation_job_run(job_id=job.pk).result == "succeeded"
    asset = Asset.objects.for_brand(brand).get(job=job)
    disclosure = disclosure_read((media_root / asset.image.name).read_bytes())
    assert disclosure["ai_generated"] and disclosure["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    assert (disclosure["generator"], disclosure["persona"], disclosure["brand"]) == (
        persona.model.slug,
        "@ava",
        brand.name,
    )
    assert disclosure["draft"] is True and disclosure["format"] == "master"


def test_it_renders_the_same_image_for_the_same_persona(owner, brand, persona, media_root):
    images = []
    for _ in range(2):
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)
        generation_job_run(job_id=job.pk)
        with Image.open(Asset.objects.for_brand(brand).get(job=job).image.path) as image:
            # Pixels, not bytes: each file's C2PA signature is made afresh.
            images.append(image.tobytes())
    assert images[0] == images[1]


def test_it_renders_a_job_delivered_twice_only_once(job, brand, media_root):
    assert generation_job_run(job_id=job.pk).result == "succeeded"
    assert generation_job_run(job_id=job.pk).result == "skipped"
    job.refresh_from_db()
    assert job.attempts == 1
    assert Asset.objects.for_brand(brand).count() == 1


def test_it_leaves_a_job_to_the_live_attempt_that_holds_it(job):
    claimed, _ = generation_job_claim(job_id=job.pk, worker=f"{socket.gethostname()}:1")  # pid 1 is alive
    assert claimed is not None
    again, outcome = generation_job_claim(job_id=job.pk, worker="other:2")
    assert again is None
    # Looked at again soon: the attempt holding it may be a batch that ends in seconds.
    assert (outcome.result, outcome.retry_after) == ("busy", BUSY_RECHECK_SECONDS)
    job.refresh_from_db()
    assert job.attempts == 1


def test_it_reclaims_a_job_whose_worker_died(job, media_root):
    claim_by_dead_worker(job, attempts=1)
    assert generation_job_run(job_id=job.pk).result == "succeeded"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Status.SUCCEEDED, 2)


def test_it_fails_a_job_that_lost_its_worker_max_attempts_times(job, brand):
    claim_by_dead_worker(job, attempts=job.max_attempts)
    assert generation_job_run(job_id=job.pk).result == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.error.startswith(f"Gave up after {job.max_attempts} attempts: the worker rendering this job was lost")
    assert not Asset.objects.for_brand(brand).exists()


def test_it_fails_with_a_readable_error_when_the_model_file_is_missing(owner, brand, checkpoint_dir, tmp_path):
    shutil.copytree(checkpoint_dir, tmp_path / "doomed")
    model = generator_model_register(
        actor=None, name="Doomed", slug="doomed", directory=str(tmp_path / "doomed"), licence_note="test"
    )
    persona = persona_create_from_seed(actor=owner, brand=brand, model=model, seed=5, name="D", handle="d")
    (tmp_path / "doomed" / "weights.safetensors").unlink()
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)

    assert generation_job_run(job_id=job.pk).result == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.error.startswith("Model 'doomed' could not be loaded from")
    assert "weights.safetensors" in job.error


def test_it_fails_with_a_readable_error_when_the_model_file_changed(owner, brand, persona, media_root):
    weights = persona.model.path / "weights.safetensors"
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-4] + b"\0\0\0\0")
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)
        assert generation_job_run(job_id=job.pk).result == "failed"
    finally:
        weights.write_bytes(original)
    job.refresh_from_db()
    assert "sha256" in job.error and persona.model.sha256 in job.error


def test_it_keeps_a_superseded_attempt_from_writing_its_result(job, brand, media_root):
    claimed, _ = generation_job_claim(job_id=job.pk, worker="gone-host:1")
    [pixels] = latents_render_batch(
        model=claimed.model, latents=[claimed.persona.latent_array()], noise_seeds=[None], batch_size=1
    ).pixels
    # Its lease lapses and another worker takes the job over.
    GenerationJob.objects.unscoped().filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert generation_job_claim(job_id=job.pk, worker="new-host:1")[0].attempts == 2

    prepared = asset_files_prepare(
        job=claimed, attempt=1, png_bytes=pixels_to_png(pixels), output_format="",
        signer=brand_signer_get(brand=brand),
    )  # fmt: skip
    stored = generation_job_succeed(
        job=claimed, attempt=1, prepared=prepared, identity_consistency=1.0, provenance={}, timings={},
        save_started=0.0,
    )  # fmt: skip
    assert stored is None
    assert not Asset.objects.for_brand(brand).exists()
    assert not [path for path in (media_root / "assets").rglob("*") if path.is_file()]


def test_it_requeues_or_fails_jobs_whose_lease_lapsed(owner, brand, persona, django_capture_on_commit_callbacks):
    lapsed = timezone.now() - timedelta(seconds=1)
    retry = persona_render_submit(actor=owner, brand=brand, persona=persona)
    exhausted = persona_render_submit(actor=owner, brand=brand, persona=persona)
    jobs = GenerationJob.objects.unscoped()
    jobs.filter(pk=retry.pk).update(status=Status.RUNNING, attempts=1, claimed_by="h:1", lease_expires_at=lapsed)
    jobs.filter(pk=exhausted.pk).update(status=Status.RUNNING, attempts=3, claimed_by="h:1", lease_expires_at=lapsed)

    with django_capture_on_commit_callbacks() as callbacks:
        assert generation_jobs_expire_leases() == {"requeued": 1, "failed": 1}
    # The requeued job is dispatched again; the exhausted one's leftover files are
    # removed and job.failed is emitted.
    assert len(callbacks) == 3
    retry.refresh_from_db()
    exhausted.refresh_from_db()
    assert (retry.status, retry.attempts, retry.claimed_by) == (Status.QUEUED, 1, "")
    assert exhausted.status == Status.FAILED and "Gave up after 3 attempts" in exhausted.error


def test_it_reclaims_a_job_whose_worker_exited_but_was_never_reaped(job, media_root):
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        GenerationJob.objects.unscoped().filter(pk=job.pk).update(
            status=Status.RUNNING,
            attempts=1,
            claimed_by=f"{socket.gethostname()}:{zombie.pid}",
            lease_expires_at=timezone.now() + timedelta(minutes=5),
        )
        assert generation_job_run(job_id=job.pk).result == "succeeded"
    finally:
        zombie.wait()
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Status.SUCCEEDED, 2)
