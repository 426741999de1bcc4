"""Celery adapters (queue "default"): the beat tick and one publish attempt."""

from celery import shared_task

from . import services


@shared_task(name="publishing.tick")
def tick():
    return services.tick()


@shared_task(name="publishing.publish")
def publish(post_id):
    return services.post_publish(post_id=post_id)
