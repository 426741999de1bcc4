"""Celery adapters for approval services."""

from celery import shared_task

from .services import review_release, reviews_release_sweep


@shared_task(name="approvals.release")
def release(review_id):
    return bool(review_release(review_id=review_id))


@shared_task(name="approvals.release_sweep")
def release_sweep():
    return reviews_release_sweep()
