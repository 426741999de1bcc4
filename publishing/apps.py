from django.apps import AppConfig


class PublishingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "publishing"

    def ready(self):
        from common.events import event_subscribe

        from . import connectors  # noqa: F401 - registers the built-in connectors
        from .services import schedule_campaign_completed

        # A schedule's campaign sends its images to review once they are all made.
        event_subscribe("campaign.completed", schedule_campaign_completed)
