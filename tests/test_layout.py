"""The project's processes see the standard library's `platform`, though the
repository has a `platform/` folder (deployment files) at its root."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

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
    result = manage("shell", "--verbosity", "0", "-c", "import platform; print(platform.__file__); print(platform.python_version())")
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
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env_without_key, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
