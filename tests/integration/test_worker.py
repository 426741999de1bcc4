import shutil
import sysconfig
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from avatars.services import persona_create_from_seed, persona_render_submit
from config.celery import app as celery_app
from content.models import Asset
from generation.models import GenerationJob
from generation.services.jobs import generation_jobs_dispatch
from generation.services.registry import generator_model_register
from tests.integration.celery_app import CRASH_MODEL_SLUG
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = GenerationJob.Status
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def job_finished(job, worker, timeout=120):
    def finished():
        job.refresh_from_db()
        return job.is_finished

    try:
        wait_for(finished, timeout=timeout, what=f"job {job.pk} to finish (now {job.status})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.log_path.read_text()[-4000:]}") from None
    return job


def gpu_queue_drained():
    """Returns once the worker has taken every message sent to "gpu" before
    this call: it consumes that queue in order, one message at a time."""
    return celery_app.send_task("tests.platform_module", queue="gpu").get(timeout=120)


def model_copy(checkpoint_dir, tmp_path, slug):
    shutil.copytree(checkpoint_dir, tmp_path / slug)
    return generator_model_register(
        actor=None, name=slug, slug=slug, directory=str(tmp_path / slug), licence_note="test"
    )


def test_it_imports_the_stdlib_platform_in_the_worker(worker):
    reply = celery_app.send_task("tests.platform_module").get(timeout=60)
    assert Path(reply["file"]).resolve().parent == STDLIB
    assert reply["python"].startswith("3.11")


def test_it_renders_a_submitted_job_in_a_real_worker(worker, owner, brand, persona):
    job = job_finished(persona_render_submit(actor=owner, brand=brand, persona=persona), worker)

    assert (job.status, job.attempts, job.error) == (Status.SUCCEEDED, 1, "")
    asset = Asset.objects.for_brand(brand).get(job=job)
    assert Path(asset.image.path).is_file() and Path(asset.image.path).stat().st_size > 0
    assert (asset.width, asset.height) == (64, 64) and asset.ai_generated
    assert job.timings["render_ms"] > 0


def test_it_renders_a_task_delivered_three_times_once(worker, owner, brand, persona):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    generation_jobs_dispatch(job_ids=[job.pk])
    generation_jobs_dispatch(job_ids=[job.pk])
    job_finished(job, worker)
    gpu_queue_drained()

    job.refresh_from_db()
    assert (job.status, job.attempts) == (Status.SUCCEEDED, 1)
    assert Asset.objects.for_brand(brand).count() == 1


def test_it_fails_a_job_that_keeps_killing_its_worker(worker, settings, owner, brand, checkpoint_dir, tmp_path):
    settings.GENERATION_MAX_ATTEMPTS = 2
    model = model_copy(checkpoint_dir, tmp_path, CRASH_MODEL_SLUG)
    persona = persona_create_from_seed(actor=owner, brand=brand, model=model, seed=1, name="Crash", handle="crash")

    job = job_finished(persona_render_submit(actor=owner, brand=brand, persona=persona), worker, timeout=180)

    assert (job.status, job.attempts) == (Status.FAILED, 2)
    assert job.error.startswith("Gave up after 2 attempts: the worker rendering this job was lost")
    assert not Asset.objects.for_brand(brand).exists()
    assert worker.log_path.read_text().count("WorkerLostError") >= 2
    # The worker itself survived its pool processes and goes on working.
    assert worker.poll() is None
    gpu_queue_drained()


def test_it_fails_a_job_whose_model_file_is_missing_and_keeps_working(
    worker, owner, brand, persona, checkpoint_dir, tmp_path
):
    model = model_copy(checkpoint_dir, tmp_path, "vanishing")
    lost = persona_create_from_seed(actor=owner, brand=brand, model=model, seed=2, name="Lost", handle="lost")
    (tmp_path / "vanishing" / "weights.safetensors").unlink()

    failed = job_finished(persona_render_submit(actor=owner, brand=brand, persona=lost), worker)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert failed.error.startswith("Model 'vanishing' could not be loaded from")
    assert "weights.safetensors" in failed.error

    ok = job_finished(persona_render_submit(actor=owner, brand=brand, persona=persona), worker)
    assert ok.status == Status.SUCCEEDED
    assert worker.poll() is None


def test_it_refuses_to_rewrite_audit_rows_in_postgresql(services, brand):
    event = AuditEvent.objects.for_brand(brand).first()
    for sql in ("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action="brand.created").exists()
