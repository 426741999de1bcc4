"""The job row as its own outbox (generation.services.jobs): which queued jobs
the sweeper (generation_jobs_dispatch_pending) sends again, and what a send
the broker refuses leaves on the job.

No broker server is needed: the Celery app is pointed at kombu's in-memory
transport, whose queue "gpu" is read back to see what was actually sent, or
at a closed local port for a broker that is down. Unit tests otherwise use the
filesystem transport under var/broker/, which these tests must not fill."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from avatars.services import persona_render_submit
from generation.models import GenerationJob
from generation.services.jobs import (
    DISPATCH_BACKOFF_MAX_SECONDS,
    DISPATCH_GRACE,
    REDISPATCH_AFTER,
    generation_jobs_dispatch,
    generation_jobs_dispatch_pending,
    generation_jobs_expire_leases,
)
from tests.conftest import celery_broker

Status = GenerationJob.Status


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(settings):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CELERY_BROKER_URL = url
    with celery_broker(url):
        yield url


@pytest.fixture
def submit(owner, brand, persona):
    """Queue a render job without dispatching it (unit tests never run on_commit
    callbacks unless captured), with its outbox fields as given."""

    def make(**fields):
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)
        if fields:
            GenerationJob.objects.unscoped().filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
        return job

    return make


def test_it_uses_a_broker_transport_that_needs_no_server_in_unit_tests(settings):
    assert settings.CELERY_BROKER_URL.startswith(("filesystem:", "memory:")), settings.CELERY_BROKER_URL


def test_it_sends_again_only_jobs_not_accepted_whose_wait_is_over(submit, memory_broker):
    now = timezone.now()
    long_ago = now - DISPATCH_GRACE - timedelta(minutes=5)
    accepted = submit(dispatched_at=now - timedelta(minutes=1), queued_at=long_ago)
    accepted_but_marked = submit(dispatched_at=now, next_dispatch_at=now - timedelta(minutes=1), queued_at=long_ago)
    backing_off = submit(
        dispatch_attempts=1, next_dispatch_at=now + timedelta(seconds=30), dispatch_error="down", queued_at=long_ago
    )
    backoff_over = submit(
        dispatch_attempts=2, next_dispatch_at=now - timedelta(seconds=1), dispatch_error="down", queued_at=long_ago
    )
    never_sent_old = submit(queued_at=now - DISPATCH_GRACE - timedelta(seconds=1))
    never_sent_new = submit(queued_at=now - DISPATCH_GRACE + timedelta(seconds=20))
    finished_unsent = submit(status=Status.SUCCEEDED, queued_at=long_ago)
    running_unsent = submit(status=Status.RUNNING, next_dispatch_at=now - timedelta(seconds=1), queued_at=long_ago)

    assert generation_jobs_dispatch_pending() == 2

    assert memory_broker.sent_job_ids() == [backoff_over.pk, never_sent_old.pk]
    for job in (backoff_over, never_sent_old):
        job.refresh_from_db()
        assert job.dispatched_at is not None and (job.dispatch_error, job.next_dispatch_at) == ("", None)
        assert job.waiting_reason == "Waiting for a worker."
    for job in (accepted, accepted_but_marked, backing_off, never_sent_new, finished_unsent, running_unsent):
        before = (job.dispatched_at, job.next_dispatch_at, job.dispatch_attempts)
        job.refresh_from_db()
        assert (job.dispatched_at, job.next_dispatch_at, job.dispatch_attempts) == before, job
    # Nothing is left to send now.
    assert generation_jobs_dispatch_pending() == 0 and memory_broker.sent_job_ids() == []


def test_it_sends_again_a_job_accepted_long_ago_that_no_worker_claimed(submit, memory_broker):
    """Its message may be gone (a broker restarted without persistence, a purge)."""
    now = timezone.now()
    lost = submit(dispatched_at=now - REDISPATCH_AFTER - timedelta(seconds=1), queued_at=now - timedelta(hours=1))
    waiting = submit(dispatched_at=now - REDISPATCH_AFTER + timedelta(minutes=1), queued_at=now - timedelta(hours=1))
    claimed = submit(status=Status.RUNNING, dispatched_at=now - timedelta(hours=1), queued_at=now - timedelta(hours=1))
    assert generation_jobs_dispatch_pending() == 1 and memory_broker.sent_job_ids() == [lost.pk]
    lost.refresh_from_db()
    assert lost.dispatched_at > now - timedelta(seconds=5)  # not again until REDISPATCH_AFTER has passed anew
    assert generation_jobs_dispatch_pending() == 0
    assert {waiting.pk, claimed.pk}.isdisjoint(memory_broker.sent_job_ids())


def test_it_sends_after_commit_and_marks_the_job_accepted(
    owner, brand, persona, memory_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)

    assert memory_broker.sent_job_ids() == [job.pk]
    job.refresh_from_db()
    assert job.dispatched_at is not None and (job.dispatch_attempts, job.dispatch_error) == (0, "")
    assert generation_jobs_dispatch_pending() == 0


def test_it_keeps_a_job_the_broker_refused_waiting_with_a_reason_and_backs_off(submit, broker_down):
    first, second = submit(), submit()
    started = timezone.now()

    generation_jobs_dispatch(job_ids=[first.pk, second.pk])

    for job in (first, second):
        job.refresh_from_db()
        assert (job.status, job.dispatched_at, job.dispatch_attempts) == (Status.QUEUED, None, 1)
        assert job.dispatch_error.startswith("The task queue is unreachable (OperationalError: ")
        assert job.dispatch_error.endswith("; sending again in 5 s.")
        assert job.waiting_reason == job.dispatch_error
        assert (
            timedelta(seconds=5) <= job.next_dispatch_at - started <= timedelta(seconds=5) + (timezone.now() - started)
        )

    # Still down when the backoff is over: the wait doubles, up to its cap.
    GenerationJob.objects.unscoped().filter(pk=first.pk).update(next_dispatch_at=timezone.now() - timedelta(seconds=1))
    GenerationJob.objects.unscoped().filter(pk=second.pk).update(
        next_dispatch_at=timezone.now() - timedelta(seconds=1), dispatch_attempts=9
    )
    assert generation_jobs_dispatch_pending() == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.dispatch_attempts, first.dispatch_error.endswith("sending again in 10 s.")) == (2, True)
    assert (
        second.dispatch_attempts,
        second.dispatch_error.endswith(f"sending again in {DISPATCH_BACKOFF_MAX_SECONDS} s."),
    ) == (10, True)
    assert generation_jobs_dispatch_pending() == 0  # both are backing off


def test_it_sends_again_a_requeued_job_the_broker_refused(
    owner, brand, persona, memory_broker, settings, django_capture_on_commit_callbacks
):
    """A job whose worker vanished goes back to the queue (expire_leases); if the
    broker is down right then, the job must wait in the outbox like a new one."""
    with django_capture_on_commit_callbacks(execute=True):
        job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    assert memory_broker.sent_job_ids() == [job.pk]
    GenerationJob.objects.unscoped().filter(pk=job.pk).update(
        status=Status.RUNNING,
        attempts=1,
        claimed_by="gone-host:1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    down = f"redis://127.0.0.1:{closed_port()}/0"
    with celery_broker(down), django_capture_on_commit_callbacks(execute=True):
        assert generation_jobs_expire_leases() == {"requeued": 1, "failed": 0}
    job.refresh_from_db()
    assert job.status == Status.QUEUED
    assert job.dispatched_at is None and job.dispatch_error.startswith("The task queue is unreachable"), (
        "BUG (generation/services/jobs.py _job_requeue): a requeued job keeps dispatched_at from its first send, so "
        "when its re-send fails nothing is recorded and the sweeper (dispatched_at=None only) never sends it again: "
        f"it waits for ever. dispatched_at={job.dispatched_at}, dispatch_error={job.dispatch_error!r}, "
        f"waiting_reason={job.waiting_reason!r}"
    )

    # The broker is back and the backoff over: the sweeper sends it.
    GenerationJob.objects.unscoped().filter(pk=job.pk).update(next_dispatch_at=timezone.now() - timedelta(seconds=1))
    assert generation_jobs_dispatch_pending() == 1
    assert memory_broker.sent_job_ids() == [job.pk]
