"""The CUDA ops' build machinery: its lock, timeouts, fallback. Runs on the CPU.

Real files and real processes throughout: other processes hold the lock, get killed,
compile (a stand-in compiler: a child process that sleeps, fails, or builds a tiny real
Python extension with the C compiler), and the tests check what the calling process sees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

from generation.stylegan.ops.cuda import build
from generation.stylegan.ops.cuda.build import BuildLock, BuildLockTimeout, OpsBuildError
from generation.stylegan.ops.cuda.locking import LockTimeout

from .lock_processes import owner, start_holder, stop

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


# ---------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------


def test_build_lock_held_by_a_live_process_times_out_naming_its_settings(tmp_path):
    # The lock itself is tested in test_locking.py; the build's lock is an OpsBuildError.
    path = tmp_path / "build.lock"
    holder = start_holder(path)
    try:
        started = time.monotonic()
        with pytest.raises(BuildLockTimeout) as caught:
            BuildLock(path, timeout=1.0, max_age=3600).acquire()
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 5.0
        assert isinstance(caught.value, OpsBuildError) and isinstance(caught.value, LockTimeout)
        assert f"gave up waiting for the build lock {path}" in str(caught.value)
        assert f"pid {holder.pid}" in str(caught.value)
        assert build.ENV_BUILD_TIMEOUT in str(caught.value) and build.ENV_LOCK_MAX_AGE in str(caught.value)
        assert owner(path) == holder.pid  # not broken: its owner is alive
    finally:
        stop(holder)


# ---------------------------------------------------------------------------------------
# Building, with a stand-in compiler
# ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_state():
    build._reset_for_tests()
    yield
    build._reset_for_tests()


@pytest.fixture
def fake_cuda(monkeypatch, tmp_path, fresh_state):
    """Pretend CUDA is usable (architecture 8.0) and use a private cache directory."""
    monkeypatch.setenv(build.ENV_BUILD_DIR, str(tmp_path / "cache"))
    monkeypatch.setattr(build, "_cuda_status", lambda: (True, ""))
    monkeypatch.setattr(build, "_arch_list", lambda: "8.0")
    return tmp_path / "cache"


def compiler(monkeypatch, code: str, *args: str) -> None:
    """Replace the compiling child process by ``python -c code <build dir> args...``."""
    monkeypatch.setattr(build, "_child_command", lambda directory: [sys.executable, "-c", code, str(directory), *args])


def fallback_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "falls back to the PyTorch reference" in str(w.message)]


def ours(record) -> list[str]:
    """Every warning recorded but the garbage collector's ResourceWarnings (not ours)."""
    return [str(w.message) for w in record if not issubclass(w.category, ResourceWarning)]


def test_the_compiler_child_runs_torchs_jit_build_on_our_sources(tmp_path):
    # A stand-in torch.utils.cpp_extension records what the real child command asks of it;
    # the child needs nothing of ours (no engine import, no file loaded by path).
    stub = tmp_path / "stub"
    (stub / "torch" / "utils").mkdir(parents=True)
    (stub / "torch" / "__init__.py").write_text("")
    (stub / "torch" / "utils" / "__init__.py").write_text("")
    (stub / "torch" / "utils" / "cpp_extension.py").write_text(
        "import json, os\ndef load(**kwargs):\n    open(os.environ['RECORD'], 'w').write(json.dumps(kwargs))\n"
    )
    record = tmp_path / "record.json"
    directory = tmp_path / "build"
    env = {"PYTHONPATH": str(stub), "RECORD": str(record), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(build._child_command(directory), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"built {build.EXTENSION_NAME} in {directory}" in result.stdout
    arguments = json.loads(record.read_text())
    assert arguments["name"] == build.EXTENSION_NAME and arguments["build_directory"] == str(directory)
    assert arguments["sources"] == [str(build.SOURCE_DIR / name) for name in build.SOURCES]
    assert all(Path(source).is_file() for source in arguments["sources"])
    assert arguments["with_cuda"] is True and arguments["extra_include_paths"] == [str(build.SOURCE_DIR)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_get_extension_is_none_quietly(monkeypatch, tmp_path, fresh_state):
    monkeypatch.setenv(build.ENV_BUILD_DIR, str(tmp_path / "cache"))
    monkeypatch.setattr(build, "_child_command", lambda d: pytest.fail("no build may start without CUDA"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert build.get_extension() is None
        assert build.cuda_ops_available() is False
        assert build.get_extension() is None
    assert ours(record) == []
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_build_all_raises_a_clear_error(monkeypatch, tmp_path, fresh_state):
    monkeypatch.setenv(build.ENV_BUILD_DIR, str(tmp_path / "cache"))
    with pytest.raises(OpsBuildError, match="cannot build the CUDA ops: (torch .* is a CPU-only build|no CUDA device)"):
        build.build_all()


def test_build_key_names_python_torch_cuda_arch_and_sources(fake_cuda, monkeypatch, tmp_path):
    key = build.build_key()
    assert f"torch{torch.__version__}" in key and f"cuda{torch.version.cuda}" in key
    assert f"py{sys.version_info.major}{sys.version_info.minor}" in key
    assert "sm8.0" in key and key.endswith(build.source_hash()[:16])
    assert build.build_dir() == fake_cuda / key

    sources = tmp_path / "src"
    shutil.copytree(build.SOURCE_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "SOURCE_DIR", sources)
    assert build.source_hash() == build.source_hash()
    before = build.source_hash()
    with open(sources / "upfirdn2d.cu", "a") as f:
        f.write("\n// changed\n")
    assert build.source_hash() != before


def test_arch_list_follows_torch_cuda_arch_list(monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6;9.0")
    assert build._arch_list() == "8.6;9.0"


def test_lock_timeout_falls_back_with_one_warning_per_op(fake_cuda, monkeypatch):
    monkeypatch.setenv(build.ENV_BUILD_TIMEOUT, "1")
    monkeypatch.setattr(build, "_child_command", lambda d: pytest.fail("the compiler must not start without the lock"))
    directory = build.build_dir()
    directory.mkdir(parents=True)
    holder = start_holder(build.lock_path(directory))
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            started = time.monotonic()
            assert build.get_extension() is None
            elapsed = time.monotonic() - started
            assert 1.0 <= elapsed < 6.0
            # Decided once per process: no second wait, no second warning.
            started = time.monotonic()
            assert build.get_extension() is None
            assert build.cuda_ops_available() is False
            assert time.monotonic() - started < 0.5
            build._warn_fallback("bias_act", "again")  # what functions.py does on each fallback
            build._warn_fallback("upfirdn2d", "again")
        messages = fallback_warnings(record)
        assert len(messages) == 2, messages
        assert len(ours(record)) == 2, ours(record)
        assert "'bias_act'" in messages[0] and "'upfirdn2d'" in messages[1]
        for message in messages:
            assert "build lock" in message and f"pid {holder.pid}" in message
        assert "gave up waiting" in build.fallback_reason()
    finally:
        stop(holder)


def test_compiler_that_hangs_is_killed_at_the_timeout(fake_cuda, monkeypatch, tmp_path):
    monkeypatch.setenv(build.ENV_BUILD_TIMEOUT, "2")
    pids = tmp_path / "pids"
    # Like ninja starting nvcc: the child starts a grandchild; both must die.
    compiler(
        monkeypatch,
        textwrap.dedent(
            """
            import os, subprocess, sys, time
            grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            open(sys.argv[2], "w").write(f"{os.getpid()} {grandchild.pid}")
            print("compiling bias_act.cu ...", flush=True)
            time.sleep(120)
            """
        ),
        str(pids),
    )
    started = time.monotonic()
    with pytest.raises(OpsBuildError) as caught:
        build.build_all()
    assert 2.0 <= time.monotonic() - started < 10.0
    message = str(caught.value)
    assert "did not finish within 2 s" in message and build.ENV_BUILD_TIMEOUT in message
    assert "compiling bias_act.cu" in message  # the log's tail
    child, grandchild = (int(p) for p in pids.read_text().split())
    assert wait_gone(child) and wait_gone(grandchild)
    assert not build.lock_path().exists()
    assert not (build.build_dir() / build.STAMP_NAME).exists()


def test_failed_compile_reports_the_log_and_falls_back_once_per_op(fake_cuda, monkeypatch):
    compiler(
        monkeypatch,
        "import sys; print(\"nvcc fatal   : Unsupported gpu architecture 'compute_80'\"); sys.exit(2)",
    )
    with pytest.raises(OpsBuildError) as caught:
        build.build_all()
    assert "exit status 2" in str(caught.value) and "Unsupported gpu architecture" in str(caught.value)
    assert str(build.build_dir() / build.LOG_NAME) in str(caught.value)
    assert not build.lock_path().exists()

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert build.get_extension() is None
        assert build.get_extension() is None
    messages = fallback_warnings(record)
    assert len(ours(record)) == 2 and len(messages) == 2
    assert all("Unsupported gpu architecture" in m for m in messages)


def test_bad_timeout_setting_falls_back_with_a_clear_reason(fake_cuda, monkeypatch):
    monkeypatch.setenv(build.ENV_BUILD_TIMEOUT, "ten minutes")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert build.get_extension() is None
    assert len(ours(record)) == 2 and all(build.ENV_BUILD_TIMEOUT in m for m in ours(record))


# A stand-in compiler that builds a real (tiny) Python extension module with the C compiler.
TINY_MODULE = textwrap.dedent(
    """
    import os, subprocess, sys, sysconfig
    directory, counter = sys.argv[1], sys.argv[2]
    assert not os.path.exists(os.path.join(directory, "lock")), "torch's stale lock file was not removed"
    with open(counter, "a") as f:
        f.write("built\\n")
    src = os.path.join(directory, "tiny.c")
    with open(src, "w") as f:
        f.write('''
    #include <Python.h>
    static PyObject* answer(PyObject* self, PyObject* args) { return PyLong_FromLong(42); }
    static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
    static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "persona_stylegan_ops", NULL, -1, methods};
    PyMODINIT_FUNC PyInit_persona_stylegan_ops(void) { return PyModule_Create(&mod); }
    ''')
    include = sysconfig.get_paths()["include"]
    out = os.path.join(directory, "persona_stylegan_ops.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-I" + include, src, "-o", out], check=True)
    print("built", out, flush=True)
    """
)


def _can_build_c_extensions() -> bool:
    return shutil.which("cc") is not None and Path(sysconfig.get_paths()["include"], "Python.h").exists()


@pytest.mark.skipif(not _can_build_c_extensions(), reason="needs a C compiler and Python.h")
def test_successful_build_is_stamped_loaded_and_reused(fake_cuda, monkeypatch, tmp_path):
    counter = tmp_path / "builds"
    compiler(monkeypatch, TINY_MODULE, str(counter))
    directory = build.build_dir()
    directory.mkdir(parents=True)
    (directory / "lock").write_text("")  # torch's own lock, left by a killed build

    assert build.build_all() == str(directory)
    stamp = json.loads((directory / build.STAMP_NAME).read_text())
    assert stamp["source_hash"] == build.source_hash() and stamp["arch"] == "8.0"
    assert counter.read_text() == "built\n"
    assert not build.lock_path(directory).exists()

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ext = build.get_extension()
    assert ours(record) == []
    assert ext is not None and ext.answer() == 42
    assert build.cuda_ops_available()

    # Another process finds the finished build and loads it without compiling or locking.
    other = textwrap.dedent(
        """
        import sys
        from generation.stylegan.ops.cuda import build as b
        b._cuda_status = lambda: (True, "")
        b._arch_list = lambda: "8.0"
        b._child_command = lambda d: [sys.executable, "-c", "raise SystemExit(3)"]
        b.BuildLock.acquire = lambda self, deadline=None: sys.exit("tried to lock")
        ext = b.get_extension()
        print(ext.answer() if ext is not None else b.fallback_reason())
        """
    )
    result = subprocess.run([sys.executable, "-c", other], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "42"
    assert counter.read_text() == "built\n"  # still one build
