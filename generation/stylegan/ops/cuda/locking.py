"""A cross-process lock file with stale-lock detection and a timeout.

``FileLock(path, timeout, max_age)`` serialises processes (on one host or sharing a
file system) around a piece of work, such as building the CUDA ops into a cache:

* The lock file is created atomically (written aside, then hard-linked into place) and
  names its owner: pid, host, process start time, creation time and a random token.
* A lock whose owner is dead (same host), whose owner's pid now belongs to another
  process, or that is older than ``max_age`` seconds is stale and is broken; why is
  recorded in ``FileLock.broken``.
* Waiting gives up at a deadline with ``LockTimeout`` (or the subclass a caller names in
  ``timeout_error``), saying who holds the lock.
* Breaking a stale lock and releasing one happen under a short ``fcntl`` guard lock, so
  a process never removes a lock that another process has just taken.

Standard library only, and no imports relative to its package, so that a process can
load this file by path without importing torch or the engine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple


class LockTimeout(Exception):
    """Another live process held the lock for longer than the timeout."""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (guards against reused pids), if readable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are plain.
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockInfo(NamedTuple):
    pid: int
    host: str
    started: str | None
    created: float
    token: str

    def describe(self) -> str:
        age = time.time() - self.created
        return f"pid {self.pid} on {self.host}, taken {age:.0f} s ago"


class FileLock:
    """An inter-process lock file with stale-lock detection and a timeout (see the module
    docstring). Use ``with FileLock(...):`` or ``acquire(deadline)`` / ``release()``.

    Subclasses may set ``timeout_error`` (the exception raised at the deadline),
    ``description`` (what the messages call the lock) and ``timeout_hint`` (appended to
    the timeout message, e.g. which settings change the timeout).
    """

    timeout_error: type[Exception] = LockTimeout
    description = "lock"
    timeout_hint = ""

    def __init__(self, path: Path | str, timeout: float, max_age: float, poll_interval: float = 0.1):
        self.path = Path(path)
        self.guard_path = self.path.with_name(self.path.name + ".guard")
        self.timeout = timeout
        self.max_age = max_age
        self.poll_interval = poll_interval
        self._token: str | None = None
        self.broken: list[str] = []  # why each stale lock we broke was stale

    # -- reading and judging ------------------------------------------------------------
    def read(self) -> LockInfo | None:
        """The current owner, or None when there is no (readable) lock file."""
        try:
            data = json.loads(self.path.read_text())
            return LockInfo(
                int(data["pid"]), str(data["host"]), data.get("started"), float(data["created"]), str(data["token"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # Unreadable content: judge it by the file's age alone.
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            return LockInfo(-1, "?", None, mtime, f"unreadable@{mtime}")

    def stale_reason(self, info: LockInfo) -> str | None:
        age = time.time() - info.created
        if age > self.max_age:
            return f"older than {self.max_age:.0f} s ({info.describe()})"
        if info.host == socket.gethostname() and info.pid > 0:
            if not pid_alive(info.pid):
                return f"its owner is dead ({info.describe()})"
            started = process_start_time(info.pid)
            if info.started and started and started != info.started:
                return f"its owner's pid now belongs to another process ({info.describe()})"
        return None

    def timeout_message(self, info: LockInfo) -> str:
        message = (
            f"gave up waiting for the {self.description} {self.path} after {self.timeout:.0f} s: "
            f"it is held by {info.describe()}"
        )
        return f"{message} ({self.timeout_hint})" if self.timeout_hint else message

    # -- taking and giving back ---------------------------------------------------------
    def _try_create(self) -> bool:
        token = uuid.uuid4().hex
        pid = os.getpid()
        payload = {
            "pid": pid,
            "host": socket.gethostname(),
            "started": process_start_time(pid),
            "created": time.time(),
            "token": token,
        }
        tmp = self.path.with_name(f"{self.path.name}.{pid}.{token}.tmp")
        tmp.write_text(json.dumps(payload))
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self._token = token
        return True

    @contextlib.contextmanager
    def _guard(self, deadline: float) -> Iterator[None]:
        fd = os.open(self.guard_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise self.timeout_error(f"timed out waiting for the guard lock {self.guard_path}") from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def acquire(self, deadline: float | None = None) -> None:
        """Take the lock, breaking stale ones; raise ``timeout_error`` at the deadline
        (a ``time.monotonic()`` value; default: ``timeout`` seconds from now)."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            if self._try_create():
                return
            info = self.read()
            if info is None:
                continue  # released meanwhile: try again at once
            reason = self.stale_reason(info)
            if reason is not None:
                with self._guard(deadline):
                    current = self.read()
                    if current is not None and current.token == info.token:
                        self.path.unlink(missing_ok=True)
                        self.broken.append(reason)
                continue
            if time.monotonic() >= deadline:
                raise self.timeout_error(self.timeout_message(info))
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        """Give the lock back if we still own it (a stale-lock breaker may have taken it)."""
        if self._token is None:
            return
        token, self._token = self._token, None
        with self._guard(time.monotonic() + 30.0):
            current = self.read()
            if current is not None and current.token == token:
                self.path.unlink(missing_ok=True)

    @property
    def held(self) -> bool:
        return self._token is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
