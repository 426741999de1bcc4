"""The project's processes see the standard library's `platform`, though the
repository has a `platform/` folder (deployment files) at its root."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def manage(*args, env=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_keeps_platform_a_folder_not_a_package():
    assert (ROOT / "platform").is_dir()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_it_imports_the_stdlib_platform_in_manage_py():
    result = manage(
        "shell", "--verbosity", "0", "-c", "import platform; print(platform.__file__); print(platform.python_version())"
    )
    assert result.returncode == 0, result.stderr
    path, version = result.stdout.split()
    assert Path(path).resolve().parent == STDLIB
    assert version.startswith("3.11")


def test_it_passes_the_deploy_check_in_production():
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "k" * 10 + "production-check-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "studio.example.com",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_refuses_to_start_in_production_without_a_secret_key():
    env = {"DJANGO_ENV": "production", "ALLOWED_HOSTS": "studio.example.com"}
    env_without_key = {k: v for k, v in {**os.environ, **env}.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=env_without_key, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


GOOD_KEY = "good-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
WEAK_KEYS = {
    "short": ("x", "SECRET_KEY is too short (under 50 characters)."),
    "uniform": ("a" * 60, "SECRET_KEY has too little variety (under 5 distinct characters)."),
    "development": ("django-insecure-" + "abcdefghij" * 5, "SECRET_KEY is a development key"),
    "missing": (None, "SECRET_KEY is not set"),
}


def production(*args, key):
    """Runs `python ARGS` in production mode with `key` as SECRET_KEY (None: unset)."""
    env = {**os.environ, "DJANGO_ENV": "production", "ALLOWED_HOSTS": "studio.example.com", "SECRET_KEY": key or ""}
    if key is None:
        del env["SECRET_KEY"]
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", WEAK_KEYS)
def test_it_refuses_a_weak_secret_key_in_production_in_one_line(kind):
    key, message = WEAK_KEYS[kind]
    result = production("manage.py", "check", key=key)
    assert result.returncode != 0
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_it_accepts_a_long_varied_secret_key_in_production():
    result = production("manage.py", "check", key=GOOD_KEY)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        # One worker: when several fail to boot at once, gunicorn's master can
        # print its own HaltServer traceback while stopping (a gunicorn race).
        ["-m", "gunicorn", "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
        ["-m", "celery", "-A", "config", "worker", "--pool", "solo", "--without-gossip", "--without-mingle"],
        ["-m", "celery", "-A", "config", "beat", "--schedule", "/nonexistent/beat-schedule"],
    ],
    ids=["gunicorn", "celery-worker", "celery-beat"],
)
def test_it_stops_every_server_process_with_one_line_on_a_weak_secret_key(command):
    result = production(*command, key="x")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    refusals = [line for line in result.stderr.splitlines() if "SECRET_KEY" in line]
    assert refusals and set(refusals) == {refusals[0]}, result.stderr
    assert refusals[0].startswith("SECRET_KEY is too short")


def test_it_stores_assets_in_an_s3_compatible_bucket_when_one_is_named():
    script = (
        "from django.core.files.storage import default_storage as s; "
        "print(s.__class__.__name__, s.bucket_name, s.endpoint_url, s.file_overwrite, s.default_acl)"
    )
    env = {"AWS_STORAGE_BUCKET_NAME": "studio-assets", "AWS_S3_ENDPOINT_URL": "http://minio.internal:9000"}
    result = manage("shell", "--no-imports", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "studio-assets", "http://minio.internal:9000", "False", "private"]
    local = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.core.files.storage import default_storage as s; print(s.__class__.__name__)",
    )
    assert local.stdout.strip() == "FileSystemStorage"
