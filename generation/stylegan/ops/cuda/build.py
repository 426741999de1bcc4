"""Just-in-time build of our CUDA ops, safe for many worker processes.

The extension (``ops.cpp``, ``bias_act.cu``, ``upfirdn2d.cu``) is compiled on first use with
``torch.utils.cpp_extension`` and ninja into a build directory keyed by the Python, torch
and CUDA versions, the GPU architectures and a hash of the sources and flags::

    $PERSONA_OPS_BUILD_DIR/<key>/            (default root: ~/.cache/persona-studio/ops)
        persona_stylegan_ops.so               the module
        build-complete.json                   written last: the build is usable
        build.log                             compiler output of the last build
        persona-build.lock                    present while a process builds

Rules that keep a worker from hanging:

* One process builds a given key at a time: it holds ``persona-build.lock``, a
  ``locking.FileLock``: a file created atomically that names its owner (pid, host,
  process start time, timestamp).
  A lock whose owner is dead (same host) or that is older than
  ``PERSONA_OPS_BUILD_LOCK_MAX_AGE`` seconds (default 3600) is stale and is broken.
* Waiting for the lock and compiling share one deadline, ``PERSONA_OPS_BUILD_TIMEOUT``
  seconds (default 600). The compiler runs in a child process (its own process group),
  killed when the deadline passes; the calling process never runs the compiler itself.
* A process that finds ``build-complete.json`` loads the module without locking.
* When the build fails or times out, :func:`get_extension` returns ``None`` and warns
  once per op and process that the op falls back to the PyTorch reference;
  :func:`build_all` raises :class:`OpsBuildError` with the reason and the log's tail.

GPU architectures come from ``TORCH_CUDA_ARCH_LIST`` when it is set, else from the visible
GPUs. To prebuild on a machine without a GPU (a worker image), set
``TORCH_CUDA_ARCH_LIST`` (e.g. ``"8.6;9.0"``) both when prebuilding and in the workers'
environment, so that both compute the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path

from .locking import FileLock, LockTimeout

ENV_BUILD_DIR = "PERSONA_OPS_BUILD_DIR"
ENV_BUILD_TIMEOUT = "PERSONA_OPS_BUILD_TIMEOUT"
ENV_LOCK_MAX_AGE = "PERSONA_OPS_BUILD_LOCK_MAX_AGE"
ENV_VERBOSE = "PERSONA_OPS_BUILD_VERBOSE"

DEFAULT_BUILD_DIR = "~/.cache/persona-studio/ops"
DEFAULT_BUILD_TIMEOUT = 600.0
DEFAULT_LOCK_MAX_AGE = 3600.0

EXTENSION_NAME = "persona_stylegan_ops"
OPS = ("bias_act", "upfirdn2d")

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("ops.cpp", "bias_act.cu", "upfirdn2d.cu")
HEADERS = ("kernel_math.cuh",)
EXTRA_CFLAGS = ("-O3",)
EXTRA_CUDA_CFLAGS = ("-O3", "--expt-relaxed-constexpr")
# Bump when the build procedure changes in a way the source hash does not capture.
BUILD_FORMAT = 1

LOCK_NAME = "persona-build.lock"
STAMP_NAME = "build-complete.json"
LOG_NAME = "build.log"


class OpsBuildError(RuntimeError):
    """The CUDA ops could not be built or loaded; the message says why."""


class BuildLockTimeout(OpsBuildError, LockTimeout):
    """Another live process held the build lock for longer than the timeout."""


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise OpsBuildError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise OpsBuildError(f"{name} must be positive, got {raw!r}")
    return value


def cache_root() -> Path:
    """The root under which each build key gets its directory."""
    return Path(os.environ.get(ENV_BUILD_DIR) or DEFAULT_BUILD_DIR).expanduser()


def build_timeout() -> float:
    """Seconds one process may spend waiting for the lock plus compiling."""
    return _env_seconds(ENV_BUILD_TIMEOUT, DEFAULT_BUILD_TIMEOUT)


def lock_max_age() -> float:
    """Seconds after which a build lock counts as stale even if its owner is alive."""
    return _env_seconds(ENV_LOCK_MAX_AGE, DEFAULT_LOCK_MAX_AGE)


# ---------------------------------------------------------------------------------------
# The build key
# ---------------------------------------------------------------------------------------


def source_hash() -> str:
    """sha256 over the sources, headers, flags and build format."""
    h = hashlib.sha256()
    h.update(f"format={BUILD_FORMAT};cflags={EXTRA_CFLAGS};cuda_cflags={EXTRA_CUDA_CFLAGS}".encode())
    for name in (*SOURCES, *HEADERS):
        h.update(b"\0" + name.encode() + b"\0")
        h.update((SOURCE_DIR / name).read_bytes())
    return h.hexdigest()


def _cuda_status() -> tuple[bool, str]:
    """(usable, reason if not): can this process run our CUDA kernels at all?"""
    import torch

    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return False, "no CUDA device is visible"
    return True, ""


def _arch_list() -> str:
    """The GPU architectures to compile for, as TORCH_CUDA_ARCH_LIST spells them."""
    env = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if env:
        return env
    import torch

    if not torch.cuda.is_available():
        raise OpsBuildError(
            "no CUDA device is visible to pick the GPU architecture; set TORCH_CUDA_ARCH_LIST "
            "(for example '8.6;9.0') to build for given architectures"
        )
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    return ";".join(f"{major}.{minor}" for major, minor in caps)


def build_key() -> str:
    """Directory name: Python, torch, CUDA, GPU architectures and the source hash."""
    import torch

    arch = _arch_list()
    raw = (
        f"py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__}"
        f"-cuda{torch.version.cuda}-sm{arch}-{source_hash()[:16]}"
    )
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", raw)


def build_dir() -> Path:
    return cache_root() / build_key()


# ---------------------------------------------------------------------------------------
# The build lock
# ---------------------------------------------------------------------------------------


class BuildLock(FileLock):
    """The build directory's lock: a ``locking.FileLock`` whose timeout is an
    ``OpsBuildError`` naming the settings that govern it."""

    timeout_error = BuildLockTimeout
    description = "build lock"
    timeout_hint = (
        f"{ENV_BUILD_TIMEOUT} sets the timeout, {ENV_LOCK_MAX_AGE} the age after which a lock counts as stale"
    )


def lock_path(directory: Path | None = None) -> Path:
    return (directory if directory is not None else build_dir()) / LOCK_NAME


# ---------------------------------------------------------------------------------------
# Compiling (in a child process) and loading
# ---------------------------------------------------------------------------------------

# The child process runs torch's JIT build and nothing of ours: the arguments of
# torch.utils.cpp_extension.load travel as JSON.
_CHILD_CODE = (
    "import json, sys\n"
    "from torch.utils import cpp_extension\n"
    "arguments = json.loads(sys.argv[1])\n"
    "cpp_extension.load(**arguments)\n"
    "print('built', arguments['name'], 'in', arguments['build_directory'], flush=True)\n"
)


def compile_arguments(directory: Path) -> dict[str, object]:
    """The keyword arguments of ``torch.utils.cpp_extension.load`` for a build into ``directory``."""
    return {
        "name": EXTENSION_NAME,
        "sources": [str(SOURCE_DIR / name) for name in SOURCES],
        "extra_cflags": list(EXTRA_CFLAGS),
        "extra_cuda_cflags": list(EXTRA_CUDA_CFLAGS),
        "extra_include_paths": [str(SOURCE_DIR)],
        "build_directory": str(directory),
        "with_cuda": True,
        "verbose": True,
    }


def _child_command(directory: Path) -> list[str]:
    """The command that compiles the extension into ``directory`` (a child process)."""
    return [sys.executable, "-c", _CHILD_CODE, json.dumps(compile_arguments(directory))]


def _module_path(directory: Path) -> Path:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        # torch names the library <name>.so (no ABI tag); accept the tagged forms too.
        candidate = directory / f"{EXTENSION_NAME}{suffix}"
        if candidate.exists():
            return candidate
    return directory / f"{EXTENSION_NAME}.so"


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no build log)"
    return "\n".join(text.splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def _run_compiler(directory: Path, deadline: float, arch: str) -> None:
    """Compile into ``directory`` in a child process killed at the deadline."""
    log_path = directory / LOG_NAME
    env = dict(os.environ)
    env["TORCH_CUDA_ARCH_LIST"] = arch
    env.setdefault("PYTHONUNBUFFERED", "1")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OpsBuildError(f"no time left to compile the CUDA ops ({ENV_BUILD_TIMEOUT}={build_timeout():.0f} s)")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            _child_command(directory),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: a timeout kills ninja and nvcc too
        )
        try:
            rc = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise OpsBuildError(
                f"compiling the CUDA ops did not finish within {build_timeout():.0f} s "
                f"({ENV_BUILD_TIMEOUT}) and was stopped; prebuild them with "
                f"`python -m generation.stylegan build-ops`. Log: {log_path}\n{_log_tail(log_path)}"
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
    if rc != 0:
        raise OpsBuildError(
            f"compiling the CUDA ops failed (exit status {rc}); log: {log_path}\n{_log_tail(log_path)}"
        )


def _import_module(directory: Path) -> types.ModuleType:
    path = _module_path(directory)
    if not path.exists():
        raise OpsBuildError(f"the build in {directory} finished but {path.name} is missing")
    import torch  # noqa: F401  (the module links against torch's libraries)

    spec = importlib.util.spec_from_file_location(EXTENSION_NAME, path)
    if spec is None or spec.loader is None:
        raise OpsBuildError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # ImportError, undefined symbols, ...
        raise OpsBuildError(f"loading the CUDA ops from {path} failed: {exc}") from exc
    return module


def _build_and_load() -> tuple[types.ModuleType, Path]:
    """Build (if needed) and load the extension; raise OpsBuildError on any failure."""
    try:
        return _build_and_load_unchecked()
    except OSError as exc:  # an unwritable cache, a missing source file, ...
        raise OpsBuildError(f"building the CUDA ops failed: {exc}") from exc


def _is_built(directory: Path) -> bool:
    return (directory / STAMP_NAME).exists() and _module_path(directory).exists()


def _build_and_load_unchecked() -> tuple[types.ModuleType, Path]:
    deadline = time.monotonic() + build_timeout()
    max_age = lock_max_age()
    usable, reason = _cuda_status()
    if not usable:
        raise OpsBuildError(f"cannot build the CUDA ops: {reason}")
    arch = _arch_list()
    directory = build_dir()
    stamp = directory / STAMP_NAME
    if not _is_built(directory):
        directory.mkdir(parents=True, exist_ok=True)
        lock = BuildLock(directory / LOCK_NAME, timeout=build_timeout(), max_age=max_age)
        lock.acquire(deadline)
        try:
            if not _is_built(directory):  # someone else may have built it while we waited
                # torch's own lock file in the build directory is stale by now: every
                # build into this directory runs under our lock, and we hold it.
                (directory / "lock").unlink(missing_ok=True)
                stamp.unlink(missing_ok=True)
                started = time.time()
                _run_compiler(directory, deadline, arch)
                import torch

                info = {
                    "extension": EXTENSION_NAME,
                    "torch": torch.__version__,
                    "cuda": torch.version.cuda,
                    "arch": arch,
                    "python": sys.version.split()[0],
                    "source_hash": source_hash(),
                    "seconds": round(time.time() - started, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(info, indent=2))
                os.replace(tmp, stamp)
        finally:
            lock.release()
    return _import_module(directory), directory


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

_state_lock = threading.RLock()
_state: dict[str, object] = {}  # "module", "error", "directory" once decided
_warned_ops: set[str] = set()


def _warn_fallback(op: str, reason: str) -> None:
    """Warn that ``op`` falls back to the reference; once per op and process."""
    with _state_lock:
        if op in _warned_ops:
            return
        _warned_ops.add(op)
    warnings.warn(
        f"persona-studio: the CUDA op {op!r} is unavailable and falls back to the PyTorch "
        f"reference implementation (slower): {reason}",
        RuntimeWarning,
        stacklevel=3,
    )


def fallback_reason() -> str | None:
    """Why get_extension() returned None on a CUDA machine (None when it did not)."""
    error = _state.get("error")
    return str(error) if error is not None else None


def get_extension() -> types.ModuleType | None:
    """The compiled ops module, or None (no CUDA here, or the build failed).

    Decided once per process. Without CUDA it returns None silently; when a build fails or
    times out it warns once per op that the op falls back to the reference.
    """
    if "module" in _state:  # decided: no lock needed to read it
        return _state["module"]  # type: ignore[return-value]
    with _state_lock:
        if "module" in _state:
            return _state["module"]  # type: ignore[return-value]
        usable, _ = _cuda_status()
        if not usable:
            _state["module"] = None
            return None
        try:
            module, directory = _build_and_load()
        except OpsBuildError as exc:
            _state["module"] = None
            _state["error"] = exc
            for op in OPS:
                _warn_fallback(op, str(exc))
            return None
        _state["module"] = module
        _state["directory"] = directory
        return module


def cuda_ops_available() -> bool:
    """True when our CUDA kernels are built and loaded in this process."""
    return get_extension() is not None


def build_all() -> str:
    """Build (or find) the CUDA ops now and return the build directory.

    Raises OpsBuildError with a clear message when CUDA is unavailable or the build fails.
    Used by ``python -m generation.stylegan build-ops`` to prebuild worker images.
    """
    with _state_lock:
        module, directory = _build_and_load()
        _state["module"] = module
        _state["directory"] = directory
        _state.pop("error", None)
        return str(directory)


def _reset_for_tests() -> None:
    """Forget this process's decision and warnings (tests only)."""
    with _state_lock:
        _state.clear()
        _warned_ops.clear()


def _main(argv: list[str]) -> int:
    """Prebuild and print the build directory (``-v``: and the build log's tail), for
    ``bench/gpu_check.sh``; operators run ``python -m generation.stylegan build-ops``."""
    verbose = "-v" in argv or os.environ.get(ENV_VERBOSE)
    try:
        directory = build_all()
    except OpsBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(directory)
    if verbose:
        print(_log_tail(Path(directory) / LOG_NAME), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
