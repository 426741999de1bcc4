"""The worker app for integration tests: the production app, configuration
and tasks, plus test-only additions that live here, not in production code:

- a task that reports which `platform` module the worker process imported;
- faults: rendering with the model whose slug is CRASH_MODEL_SLUG, or any
  image with noise seed CRASH_NOISE_SEED, kills the worker's pool process
  mid-render, as an out-of-memory kill or a segfault in a CUDA kernel would;
- with STORE_DELAY_ENV naming a file, each job's files stay written but not
  yet committed for the number of seconds the file holds (none while it is
  missing or empty): a slow store, so that a test can kill the worker at that
  point of a batch, then let the rest run at full speed;
- with STORE_LOG_ENV naming a file, each render attempt that writes a job's
  files appends "job attempt pid" to it, so that a test can count how many
  times each job was rendered and stored, by whom;
- with CLAIM_DELAY_ENV set (seconds), a worker pauses after each batch mate
  it claims, so that two workers claiming from one campaign at once really
  do interleave their claims.
"""

import os
import time
from pathlib import Path

from celery.signals import worker_process_init

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

STORE_DELAY_ENV = "TEST_STORE_DELAY_FILE"
STORE_LOG_ENV = "TEST_STORE_LOG"
CLAIM_DELAY_ENV = "TEST_CLAIM_DELAY_SECONDS"


def _store_delay():
    try:
        return float(Path(os.environ[STORE_DELAY_ENV]).read_text() or 0)
    except FileNotFoundError:
        return 0.0


@worker_process_init.connect
def _store_observed(**kwargs):
    """In each pool process (Django is set up by then): log each job's files
    once written, then wait before its asset is committed."""
    if not (os.environ.get(STORE_DELAY_ENV) or os.environ.get(STORE_LOG_ENV)):
        return
    from generation.services import jobs

    write = jobs.asset_files_write

    def asset_files_write_observed(*, job, attempt, **kwargs):
        files = write(job=job, attempt=attempt, **kwargs)
        if os.environ.get(STORE_LOG_ENV):
            with open(os.environ[STORE_LOG_ENV], "a") as log:
                log.write(f"{job.pk} {attempt} {os.getpid()}\n")
        if os.environ.get(STORE_DELAY_ENV):
            time.sleep(_store_delay())
        return files

    jobs.asset_files_write = asset_files_write_observed


@worker_process_init.connect
def _claim_slowly(**kwargs):
    """In each pool process: pause after each claim of batch mates (the claim is
    committed; rendering starts after the pause), so that two workers' claims
    interleave."""
    delay = float(os.environ.get(CLAIM_DELAY_ENV) or 0)
    if not delay:
        return
    from generation.services import jobs

    claim = jobs._batch_mates_claim

    def batch_mates_claim_slowly(**kwargs):
        claimed = claim(**kwargs)
        time.sleep(delay)
        return claimed

    jobs._batch_mates_claim = batch_mates_claim_slowly


@app.task(name="tests.platform_module")
def platform_module():
    import platform

    return {"file": platform.__file__, "python": platform.python_version()}


__all__ = ["app"]
