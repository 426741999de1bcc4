"""Celery adapters for the API's own bookkeeping."""

from celery import shared_task

from .idempotency import idempotency_records_expire


@shared_task(name="api.idempotency_expire")
def idempotency_expire():
    return idempotency_records_expire()
