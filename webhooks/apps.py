from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from common.events import ALL_EVENTS, event_subscribe

        from . import delivery

        event_subscribe(ALL_EVENTS, delivery.receive)
