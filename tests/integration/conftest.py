"""Integration tests: PostgreSQL, Redis and a real `celery worker` process.

bin/test runs them in their own pytest run with DATABASE_URL, CELERY_BROKER_URL
and CELERY_RESULT_BACKEND pointing at the local services. When those are not
configured or not reachable the tests skip, saying why; under CI (CI=true)
that is a failure instead.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import override_settings

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def services_problems():
    problems = []
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        problems.append(f"DATABASE_URL is not PostgreSQL (engine {database['ENGINE']})")
    else:
        try:
            psycopg.connect(
                host=database["HOST"] or None,
                port=database["PORT"] or None,
                user=database["USER"] or None,
                password=database["PASSWORD"] or None,
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except psycopg.OperationalError as exc:
            problems.append(f"PostgreSQL unreachable at {database['HOST']}:{database['PORT']}: {exc}".strip())
    redis_urls = {settings.CELERY_BROKER_URL or "", settings.CELERY_RESULT_BACKEND or ""}
    for url in sorted(redis_urls):
        if not url.startswith("redis://"):
            problems.append(f"CELERY_BROKER_URL and CELERY_RESULT_BACKEND must be Redis URLs, got {url or 'unset'!r}")
            continue
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis unreachable at {url}: {exc}")
    return problems


@pytest.fixture(scope="session")
def services():
    problems = services_problems()
    if problems:
        reason = "integration services unavailable (bin/test configures them): " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def database_url():
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(*, media, log_path, hostname, broker_url=None, env=None):
    """A real `celery worker` process (prefork, concurrency 1, queues gpu and
    default) on the test database, writing assets into `media`; on
    `broker_url`, or the broker of this process's settings; `env` adds to (or
    overrides) its environment (time limits, fault injection)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),  # the test database pytest-django created
        "MEDIA_ROOT": str(media),
        **(env or {}),
    }
    if broker_url is not None:
        env.update(CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=broker_url)
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.celery_app", "worker",
        "--queues", "gpu,default", "--concurrency", "1", "--pool", "prefork",
        "--hostname", f"{hostname}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = log_path
    try:
        wait_for(
            lambda: "ready." in log_path.read_text() or process.poll() is not None, timeout=90, what="worker start"
        )
        if process.poll() is not None:
            pytest.fail(f"celery worker exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        yield process
    finally:
        # Stop it before pytest-django drops the test database it is connected to.
        process_stop(process)


def process_stop(process, timeout=30):
    """SIGTERM (a warm shutdown), then SIGKILL of its whole process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def worker(services, django_db_setup, tmp_path_factory):
    """A real `celery worker` on the test database and the configured broker,
    sharing a media folder with this process."""
    media = tmp_path_factory.mktemp("media")
    celery_app.control.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with (
        override_settings(MEDIA_ROOT=media),
        celery_worker(media=media, log_path=log_path, hostname="integration") as process,
    ):
        yield process


def wait_for(predicate, *, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private, non-persistent `redis-server` on 127.0.0.1:`port` that a test
    may kill (losing every message in it) and start again on the same port."""

    def __init__(self, port, directory):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            reason = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        self.port, self.directory = port, directory
        self.url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log_path = self.directory / f"redis-{self.starts}.log"
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}:\n{log_path.read_text()}")
            try:
                return self.client.ping()
            except redis.ConnectionError:
                return False

        wait_for(up, timeout=30, what=f"redis-server on port {self.port}")
        return self

    def kill(self):
        """SIGKILL: whatever it held (queued and unacknowledged messages) is gone."""
        self.process.kill()
        self.process.wait()
        self.client.connection_pool.disconnect()

    def stop(self):
        if self.process is not None:
            process_stop(self.process)
