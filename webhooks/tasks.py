"""Celery adapters for webhook delivery (queue "default")."""

from celery import shared_task

from .delivery import attempt, deliveries_due_send


@shared_task(name="webhooks.deliver")
def deliver(delivery_id):
    return attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliver_due")
def deliver_due():
    return deliveries_due_send()
