"""Celery adapters for generation services. Routing (queue "gpu" for
renders), acks_late and time limits come from settings."""

from celery import shared_task

from .services.directions import directions_compute
from .services.jobs import generation_job_run, generation_jobs_dispatch_pending, generation_jobs_expire_leases
from .services.registry import generation_directions_sweep


@shared_task(name="generation.render_job", bind=True, max_retries=None)
def render_job(self, job_id):
    outcome = generation_job_run(job_id=job_id)
    if outcome.result == "busy":
        # Another attempt holds the job; look again once its lease ends.
        raise self.retry(countdown=outcome.retry_after)
    return outcome.result


@shared_task(name="generation.expire_leases")
def expire_leases():
    return generation_jobs_expire_leases()


@shared_task(name="generation.dispatch_pending")
def dispatch_pending():
    return generation_jobs_dispatch_pending()


@shared_task(name="generation.compute_directions")
def compute_directions(model_id):
    return directions_compute(model_id=model_id)


@shared_task(name="generation.directions_sweep")
def directions_sweep():
    return generation_directions_sweep()
