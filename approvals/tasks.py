"""Celery adapters for approval services."""

from celery import shared_task

from .services import reviews_release_sweep


@shared_task(name="approvals.release_sweep")
def release_sweep():
    return reviews_release_sweep()
