"""The worker app for integration tests: the production app, configuration
and tasks, plus two test-only additions that live here, not in production code:

- a task that reports which `platform` module the worker process imported;
- faults: rendering with the model whose slug is CRASH_MODEL_SLUG, or any
  image with noise seed CRASH_NOISE_SEED, kills the worker's pool process
  mid-render, as an out-of-memory kill or a segfault in a CUDA kernel would.
"""

import os

from config.celery import app
from generation import rendering

CRASH_MODEL_SLUG = "crash-worker"
CRASH_NOISE_SEED = 13

_latents_render_batch = rendering.latents_render_batch


def _latents_render_batch_or_die(*, model, noise_seeds, **kwargs):
    if model.slug == CRASH_MODEL_SLUG or CRASH_NOISE_SEED in noise_seeds:
        os._exit(9)
    return _latents_render_batch(model=model, noise_seeds=noise_seeds, **kwargs)


rendering.latents_render_batch = _latents_render_batch_or_die


@app.task(name="tests.platform_module")
def platform_module():
    import platform

    return {"file": platform.__file__, "python": platform.python_version()}


__all__ = ["app"]
