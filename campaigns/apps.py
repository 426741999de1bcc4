from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self):
        from .services import campaign_events_subscribe

        # campaign.completed is worked out from the campaign's jobs' events.
        campaign_events_subscribe()
