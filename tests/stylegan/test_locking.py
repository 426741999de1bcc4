"""The cross-process lock file (``ops/cuda/locking.py``): exclusive, stale locks broken,
timeouts. Real files and real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from generation.stylegan.ops.cuda.locking import FileLock, LockTimeout, process_start_time

from .lock_processes import LOCKING_PY, owner, start_holder, stop


def test_lock_is_exclusive_names_its_owner_and_is_released(tmp_path):
    path = tmp_path / "sub" / "work.lock"
    lock = FileLock(path, timeout=1.0, max_age=3600)
    lock.acquire()
    assert lock.held and path.exists()
    info = json.loads(path.read_text())
    assert info["pid"] == os.getpid() and info["token"]

    other = FileLock(path, timeout=0.3, max_age=3600)
    started = time.monotonic()
    with pytest.raises(LockTimeout, match=f"pid {os.getpid()}"):
        other.acquire()
    assert time.monotonic() - started >= 0.3
    assert json.loads(path.read_text())["token"] == info["token"]  # untouched

    lock.release()
    assert not path.exists() and not lock.held
    with other:
        assert owner(path) == os.getpid()
    assert not path.exists()


def test_lock_held_by_a_live_process_times_out(tmp_path):
    path = tmp_path / "work.lock"
    holder = start_holder(path)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            FileLock(path, timeout=1.0, max_age=3600).acquire()
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 5.0
        assert f"gave up waiting for the lock {path}" in str(caught.value)
        assert f"pid {holder.pid}" in str(caught.value)
        assert owner(path) == holder.pid  # not broken: its owner is alive
    finally:
        stop(holder)


def test_a_subclass_names_its_lock_and_raises_its_own_timeout(tmp_path):
    class JobTimeout(LockTimeout):
        pass

    class JobLock(FileLock):
        timeout_error = JobTimeout
        description = "job lock"
        timeout_hint = "JOB_TIMEOUT sets the timeout"

    path = tmp_path / "job.lock"
    with FileLock(path, timeout=1.0, max_age=3600):
        with pytest.raises(JobTimeout, match=r"gave up waiting for the job lock .* \(JOB_TIMEOUT sets the timeout\)$"):
            JobLock(path, timeout=0.2, max_age=3600).acquire()


def test_lock_of_a_killed_process_is_broken(tmp_path):
    path = tmp_path / "work.lock"
    holder = start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert path.exists() and owner(path) == holder.pid  # left behind by the dead owner

    lock = FileLock(path, timeout=5.0, max_age=3600)
    started = time.monotonic()
    lock.acquire()
    try:
        assert time.monotonic() - started < 2.0
        assert owner(path) == os.getpid()
        assert len(lock.broken) == 1 and "dead" in lock.broken[0]
    finally:
        lock.release()


def test_lock_older_than_max_age_is_broken_even_with_a_live_owner(tmp_path):
    path = tmp_path / "work.lock"
    holder = start_holder(path)
    try:
        lock = FileLock(path, timeout=10.0, max_age=1.0)
        started = time.monotonic()
        lock.acquire()
        elapsed = time.monotonic() - started
        assert owner(path) == os.getpid()
        assert "older than" in lock.broken[0]
        assert elapsed < 5.0
        # The old owner finishing later must not remove our lock.
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=10)
        assert owner(path) == os.getpid()
        lock.release()
    finally:
        stop(holder)


def test_lock_whose_pid_was_reused_is_broken(tmp_path):
    path = tmp_path / "work.lock"
    # Our own (alive) pid, but with another process start time: the pid was reused.
    path.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "1",
                                "created": time.time(), "token": "old"}))  # fmt: skip
    if process_start_time(os.getpid()) is None:
        pytest.skip("/proc/<pid>/stat is not readable here")
    lock = FileLock(path, timeout=2.0, max_age=3600)
    lock.acquire()
    assert "another process" in lock.broken[0]
    lock.release()


def test_unreadable_lock_is_judged_by_its_age(tmp_path):
    path = tmp_path / "work.lock"
    path.write_text("{not json")
    with pytest.raises(LockTimeout):
        FileLock(path, timeout=0.3, max_age=3600).acquire()
    old = time.time() - 7200
    os.utime(path, (old, old))
    lock = FileLock(path, timeout=2.0, max_age=3600)
    lock.acquire()
    assert owner(path) == os.getpid()
    lock.release()


def test_lock_serialises_concurrent_processes(tmp_path):
    path = tmp_path / "work.lock"
    log = tmp_path / "log"
    worker = textwrap.dedent(
        """
        import importlib.util, os, sys, time
        spec = importlib.util.spec_from_file_location("persona_lock_worker", sys.argv[1])
        locking = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = locking
        spec.loader.exec_module(locking)
        with locking.FileLock(sys.argv[2], timeout=60, max_age=3600, poll_interval=0.01):
            with open(sys.argv[3], "a") as f:
                f.write(f"start {os.getpid()}\\n")
            time.sleep(0.2)
            with open(sys.argv[3], "a") as f:
                f.write(f"end {os.getpid()}\\n")
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(LOCKING_PY), str(path), str(log)]) for _ in range(4)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 8, events  # 4 starts, 4 ends
    for (start, pid_a), (end, pid_b) in zip(events[0::2], events[1::2], strict=True):
        assert (start, end) == ("start", "end") and pid_a == pid_b, events  # never interleaved
    assert len({pid for _, pid in events}) == 4
    assert not path.exists()


def test_it_loads_by_path_with_the_standard_library_alone():
    code = textwrap.dedent(
        """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("persona_lock_alone", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(sorted(name for name in ("torch", "numpy", "generation", "django") if name in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-I", "-c", code, str(LOCKING_PY)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
