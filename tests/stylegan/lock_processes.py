"""Other processes that hold a ``FileLock`` (the lock file format every lock here shares).

The holder loads ``locking.py`` by path: standard library only, so it starts quickly
(no torch, no engine import).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from generation.stylegan.ops.cuda import locking

LOCKING_PY = Path(locking.__file__).resolve()

# A process that takes the lock, says so, and holds it.
HOLDER = textwrap.dedent(
    """
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("persona_lock_holder", sys.argv[1])
    locking = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = locking
    spec.loader.exec_module(locking)
    lock = locking.FileLock(sys.argv[2], timeout=float(sys.argv[4]), max_age=3600)
    lock.acquire()
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
    lock.release()
    print("released", flush=True)
    """
)


def start_holder(lock_file: Path, hold: float = 60.0, timeout: float = 30.0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(LOCKING_PY), str(lock_file), str(hold), str(timeout)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == "locked", f"the holder did not take the lock (exit {proc.poll()})"
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def owner(lock_file: Path) -> int:
    return json.loads(lock_file.read_text())["pid"]
