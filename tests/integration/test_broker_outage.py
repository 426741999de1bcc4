"""A broker outage, end to end: a render submitted from the web while the
broker is down answers at once and waits in the database (the job row is its
own outbox); once a broker is up again the sweeper sends it and a real worker
renders it exactly once.

The broker is a private `redis-server` on a port of our own, started only
when the test needs it up, so the outage is real (nothing listens on the
port: connections are refused) and other tests' Redis is never touched. A
second test takes a broker that drops connections instead of refusing them,
where only the connect timeouts in config/settings.py keep the request short."""

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit.models import AuditEvent
from content.models import Asset
from generation.models import GenerationJob
from generation.services.jobs import generation_jobs_dispatch_pending
from tests.conftest import celery_broker
from tests.integration.conftest import celery_worker, process_stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = GenerationJob.Status
SUBMIT_SECONDS_MAX = 3.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def unresponsive_port():
    """A port that neither accepts nor refuses connections, like a broker host
    that is down behind a firewall: a listener whose accept queue is full, so
    the kernel drops new connection requests and connect() waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        with socket.socket() as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel accepted a connection past a full accept queue; no port to drop it")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextmanager
def redis_server(port, directory):
    """A private, non-persistent redis-server on 127.0.0.1:`port`."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    log_path = directory / "redis.log"
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

        def up():
            if process.poll() is not None:
                raise AssertionError(f"redis-server exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for(up, timeout=30, what=f"redis-server on port {port}")
        yield client
    finally:
        process_stop(process)


def test_it_keeps_a_render_submitted_while_the_broker_is_down_and_runs_it_once_when_it_is_back(
    services, client, settings, owner, brand, persona, tmp_path
):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    port = free_port()  # nothing listens here until redis_server() below
    broker_url = f"redis://127.0.0.1:{port}/0"
    settings.CELERY_BROKER_URL = broker_url
    client.force_login(owner)
    detail = reverse("persona-detail", args=[brand.slug, persona.pk])

    with celery_broker(broker_url):
        # The broker is down: the request answers at once, and the job waits with a reason.
        started = time.monotonic()
        response = client.post(reverse("persona-render", args=[brand.slug, persona.pk]))
        submit_seconds = time.monotonic() - started
        print(f"\nrender submitted with the broker down in {submit_seconds:.2f} s")

        assert response.status_code == 302 and response.url == detail
        assert submit_seconds < SUBMIT_SECONDS_MAX, f"submitting took {submit_seconds:.1f} s with the broker down"
        job = GenerationJob.objects.for_brand(brand).get(persona=persona)
        assert (job.status, job.attempts, job.dispatched_at, job.dispatch_attempts) == (Status.QUEUED, 0, None, 1)
        assert job.dispatch_error.startswith("The task queue is unreachable (OperationalError: ")
        assert job.dispatch_error.endswith("; sending again in 5 s.")
        assert job.next_dispatch_at > timezone.now()
        page = client.get(detail)
        assert page.status_code == 200
        content = page.content.decode()
        assert f"Render queued (job {job.pk})." in content
        assert escape(job.waiting_reason) in content and job.waiting_reason == job.dispatch_error

        # Still down when the backoff is over: the sweeper tries, fails fast, and backs off further.
        jobs = GenerationJob.objects.unscoped().filter(pk=job.pk)
        jobs.update(next_dispatch_at=timezone.now() - timedelta(seconds=1))
        started = time.monotonic()
        assert generation_jobs_dispatch_pending() == 1
        assert time.monotonic() - started < SUBMIT_SECONDS_MAX
        job.refresh_from_db()
        assert (job.status, job.dispatched_at, job.dispatch_attempts) == (Status.QUEUED, None, 2)
        assert job.dispatch_error.endswith("; sending again in 10 s.")

        # The broker is back, with a worker on it.
        with (
            redis_server(port, tmp_path) as broker,
            celery_worker(
                broker_url=broker_url, media=media, log_path=tmp_path / "worker.log", hostname="outage"
            ) as worker,
        ):
            assert generation_jobs_dispatch_pending() == 0  # still backing off: nothing sent early
            jobs.update(next_dispatch_at=timezone.now() - timedelta(seconds=1))
            assert generation_jobs_dispatch_pending() == 1
            job.refresh_from_db()
            assert job.dispatched_at is not None and (job.dispatch_error, job.next_dispatch_at) == ("", None)
            assert generation_jobs_dispatch_pending() == 0  # accepted: never sent again

            def finished():
                job.refresh_from_db()
                return job.is_finished

            try:
                wait_for(finished, timeout=120, what=f"job {job.pk} to finish (now {job.status})")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nworker log:\n{worker.log_path.read_text()[-4000:]}") from None
            # The worker took the one message there was and nothing else is waiting.
            wait_for(
                lambda: broker.llen("gpu") == 0 and broker.llen("unacked") == 0, timeout=30, what="the queue to drain"
            )
            log = worker.log_path.read_text()
            assert (
                len(
                    [
                        line
                        for line in log.splitlines()
                        if "Task generation.render_job[" in line and "] received" in line
                    ]
                )
                == 1
            ), log[-4000:]

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (Status.SUCCEEDED, 1, "")
    assets = Asset.objects.for_brand(brand).filter(job=job)
    assert assets.count() == 1 and Asset.objects.for_brand(brand).count() == 1
    asset = assets.get()
    stored = {os.path.basename(field.name) for field in (asset.image, asset.web, asset.thumbnail)}
    assert {path.name for path in media.rglob("*") if path.is_file()} == stored
    audits = AuditEvent.objects.for_brand(brand).filter(target_id=str(job.pk))
    assert audits.filter(action="generation_job.succeeded").count() == 1
    assert not audits.filter(action="generation_job.failed").exists()
    page = client.get(detail).content.decode()
    assert "The task queue is unreachable" not in page and "Succeeded" in page


def test_it_answers_a_render_at_once_when_the_broker_does_not_answer_at_all(
    services, client, settings, owner, brand, persona
):
    """A broker host that drops connections (no refusal): the connect timeout
    bounds the request (unbounded, this one took over two minutes)."""
    client.force_login(owner)
    with unresponsive_port() as port:
        broker_url = f"redis://127.0.0.1:{port}/0"
        settings.CELERY_BROKER_URL = broker_url
        with celery_broker(broker_url):
            started = time.monotonic()
            response = client.post(reverse("persona-render", args=[brand.slug, persona.pk]))
            submit_seconds = time.monotonic() - started
    print(f"\nrender submitted with the broker not answering in {submit_seconds:.2f} s")

    assert response.status_code == 302
    assert submit_seconds < SUBMIT_SECONDS_MAX, f"submitting took {submit_seconds:.1f} s with the broker not answering"
    job = GenerationJob.objects.for_brand(brand).get(persona=persona)
    assert (job.status, job.dispatched_at, job.dispatch_attempts) == (Status.QUEUED, None, 1)
    assert job.dispatch_error.startswith("The task queue is unreachable (OperationalError: ")
    assert escape(job.waiting_reason) in client.get(response.url).content.decode()
