"""Our own CUDA kernels for the StyleGAN2 ops, and their just-in-time build.

* ``build.py``: compiles ``ops.cpp``, ``bias_act.cu`` and ``upfirdn2d.cu`` on first use into
  a cache keyed by Python/torch/CUDA/GPU architecture and a source hash, under a
  stale-aware, time-limited inter-process lock; falls back to the references on failure.
* ``locking.py``: that lock, ``FileLock``, a general cross-process lock file (standard
  library only).
* ``functions.py``: ``bias_act_cuda`` and ``upfirdn2d_cuda``, autograd-aware, with the
  references' arguments and results.

Public API: :func:`get_extension` (module or None, decided once per process),
:func:`cuda_ops_available`, :func:`build_all` (prebuild; returns the build directory,
raises :class:`OpsBuildError`), and ``bias_act_cuda`` / ``upfirdn2d_cuda`` (imported lazily
from ``functions.py`` so that importing this package does not import torch).
"""

from __future__ import annotations

from typing import Any

from .build import BuildLockTimeout, OpsBuildError, build_all, cuda_ops_available, get_extension


def __getattr__(name: str) -> Any:
    if name in ("bias_act_cuda", "upfirdn2d_cuda"):
        from . import functions

        return getattr(functions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BuildLockTimeout",
    "OpsBuildError",
    "bias_act_cuda",
    "build_all",
    "cuda_ops_available",
    "get_extension",
    "upfirdn2d_cuda",
]
