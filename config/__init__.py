# Load the Celery app whenever Django starts so that tasks enqueued from web
# requests (and `shared_task` decorators) bind to our configured app.
from .celery import app as celery_app

__all__ = ["celery_app"]
