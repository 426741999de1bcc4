"""Ctrl-C on `bin/run`: honcho and every process it started from
platform/Procfile (web, Celery worker with its pool, beat) are gone within
seconds, none of them killed, and a render that was in flight is back on the
queue for the next worker, not lost.

`bin/run --no-setup` (honcho, as bin/run starts it) runs here as in a
terminal: in a process group of its own, which gets the SIGINT a terminal
sends on Ctrl-C.
The processes use the test database, a free port and either broker bin/run
can have: Redis (the integration run's) or, bin/run's default, kombu's
filesystem transport in a folder of the test's own.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from avatars.services import persona_render_submit
from config.celery import app as celery_app
from generation.models import GenerationJob
from tests.integration.conftest import ROOT, database_url, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Ctrl-C to the last process gone, as the issue asks ("within a few seconds").
SHUTDOWN_SECONDS = 10


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(root_pid):
    """root_pid and all its descendants, from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def running(pid):
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Honcho:
    def __init__(self, process, log_path, port):
        self.process, self.log_path, self.port = process, log_path, port

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def ctrl_c(self):
        """SIGINT to honcho's process group, as a terminal sends it on Ctrl-C;
        returns the seconds until every process of the tree was gone."""
        tree = process_tree(self.process.pid)
        assert len(tree) >= 7, f"expected honcho, its 3 watchers, web, worker (+ pool) and beat; got {tree}"
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = started + 30
        while time.monotonic() < deadline and any(running(pid) for pid in tree):
            self.process.poll()  # reap honcho itself
            time.sleep(0.05)
        left = [pid for pid in tree if running(pid)]
        assert not left, f"still running 30 s after Ctrl-C: {left}\n{self.log[-4000:]}"
        return time.monotonic() - started


@contextmanager
def honcho_started(tmp_path, name, broker):
    """`bin/run --no-setup`: honcho on platform/Procfile; yields once the web
    server answers, the worker is ready and beat has opened its schedule."""
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),  # the test database pytest-django created
        "MEDIA_ROOT": str(tmp_path / "media"),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **broker.env,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [ROOT / "bin" / "run", "--no-setup"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    honcho = Honcho(process, log_path, port)
    try:
        wait_for(
            lambda: process.poll() is not None
            or (
                " ready." in honcho.log
                and any(tmp_path.glob("celerybeat-schedule*"))
                and answers(f"http://127.0.0.1:{port}/accounts/login/")
            ),
            timeout=120,
            what="web, worker and beat to start",
        )
        assert process.poll() is None, f"honcho exited with {process.returncode}:\n{honcho.log[-4000:]}"
        yield honcho
    finally:
        for pid in process_tree(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()


@contextmanager
def job_row_locked(job):
    """Holds the job's row lock from another connection: the worker's claim
    (a conditional UPDATE of that row) waits, so its task stays in flight."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
        password=db["PASSWORD"] or None, dbname=db["NAME"],
    ) as locker:  # fmt: skip
        locker.execute(f"SELECT id FROM {GenerationJob._meta.db_table} WHERE id = %s FOR UPDATE", [job.pk])
        yield locker
        locker.rollback()


def claim_waiting_on_lock(locker):
    # Statistics views are snapshotted per transaction, and the locker's lasts the whole test.
    locker.execute("SELECT pg_stat_clear_snapshot()")
    row = locker.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query ILIKE 'UPDATE%%generation_generationjob%%'"
    ).fetchone()
    return row[0] == 1


class RedisBroker:
    env = {}

    def __init__(self):
        self.client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.clear()

    def clear(self):
        self.client.delete("gpu", "default", "unacked", "unacked_index")

    def waiting(self, queue):
        return self.client.llen(queue)

    def unacked(self):
        return self.client.hlen("unacked")

    def send_render(self, job):
        pass  # generation_jobs_submit sent it here already


class FilesystemBroker:
    """bin/run's default broker, in a folder of this test's own."""

    def __init__(self, folder):
        self.folder = folder
        self.env = {"CELERY_BROKER_URL": "filesystem://localhost/", "CELERY_BROKER_DIR": str(folder)}
        self.options = {
            "data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"), "processed_folder": str(folder / "processed"),
            "store_processed": False,
        }  # fmt: skip
        for path in ("queue", "control", "processed"):
            (folder / path).mkdir(parents=True, exist_ok=True)

    def waiting(self, queue):
        return len(list((self.folder / "queue").glob(f"*.{queue}.msg")))

    def unacked(self):
        return 0  # kept in the worker's memory only: lost if the worker is killed

    def send_render(self, job):
        with celery_app.connection_for_write("filesystem://localhost/", transport_options=self.options) as conn:
            celery_app.send_task("generation.render_job", args=[job.pk], retry=False, connection=conn)


@pytest.fixture(params=["redis", "filesystem"])
def broker(request, services, tmp_path):
    if celery_app.control.ping(timeout=1):
        pytest.fail("another Celery worker listens on the integration broker; it would take this test's render")
    redis_broker = RedisBroker()  # also where the test process itself sends tasks
    yield redis_broker if request.param == "redis" else FilesystemBroker(tmp_path / "broker")
    redis_broker.clear()


def test_it_stops_every_process_on_ctrl_c_within_seconds(broker, tmp_path):
    with honcho_started(tmp_path, "idle", broker) as honcho:
        seconds = honcho.ctrl_c()

    assert seconds < SHUTDOWN_SECONDS, honcho.log[-4000:]
    assert "sending SIGKILL" not in honcho.log, f"honcho had to kill a process:\n{honcho.log[-4000:]}"
    assert honcho.process.returncode == 130  # honcho's own exit status for SIGINT
    assert list(tmp_path.glob("celerybeat-schedule*")), "beat's schedule is where CELERY_BEAT_SCHEDULE_FILENAME says"


def test_it_requeues_a_render_in_flight_at_ctrl_c_and_the_next_worker_renders_it(
    broker, tmp_path, owner, brand, persona
):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    broker.send_render(job)
    assert broker.waiting("gpu") == 1  # sent, and no worker yet

    with job_row_locked(job) as locker:
        with honcho_started(tmp_path, "first", broker) as honcho:
            wait_for(lambda: claim_waiting_on_lock(locker), timeout=60, what="the worker's claim of the job")
            assert "generation.render_job[" in honcho.log and broker.waiting("gpu") == 0  # in flight
            seconds = honcho.ctrl_c()

        assert seconds < SHUTDOWN_SECONDS, honcho.log[-4000:]
        assert "sending SIGKILL" not in honcho.log, f"honcho had to kill a process:\n{honcho.log[-4000:]}"
        # Back on the queue at once, not after the visibility timeout.
        assert broker.waiting("gpu") == 1 and not broker.unacked(), honcho.log[-4000:]
        job.refresh_from_db()
        assert (job.status, job.attempts) == (GenerationJob.Status.QUEUED, 0)

    with honcho_started(tmp_path, "second", broker) as honcho:
        def finished():
            job.refresh_from_db()
            return job.is_finished

        wait_for(finished, timeout=120, what=f"job {job.pk} to finish (now {job.status})")
        honcho.ctrl_c()

    assert (job.status, job.attempts, job.error) == (GenerationJob.Status.SUCCEEDED, 1, ""), honcho.log[-4000:]
