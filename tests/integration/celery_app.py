"""The worker app for integration tests: the production app, configuration
and tasks, plus two test-only additions that live here, not in production code:

- a task that reports which `platform` module the worker process imported;
- a fault: rendering with the model whose slug is CRASH_MODEL_SLUG kills the
  worker's pool process mid-render, as an out-of-memory kill or a segfault in
  a CUDA kernel would.
"""

import os

from config.celery import app
from generation import rendering

CRASH_MODEL_SLUG = "crash-worker"

_latent_render = rendering.latent_render


def _latent_render_or_die(*, model, **kwargs):
    if model.slug == CRASH_MODEL_SLUG:
        os._exit(9)
    return _latent_render(model=model, **kwargs)


rendering.latent_render = _latent_render_or_die


@app.task(name="tests.platform_module")
def platform_module():
    import platform

    return {"file": platform.__file__, "python": platform.python_version()}


__all__ = ["app"]
