from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from campaigns.services import campaign_events_subscribe
        from common.events import ALL_EVENTS, event_subscribe

        from . import delivery

        event_subscribe(ALL_EVENTS, delivery.receive)
        # campaign.completed is worked out by campaigns from its jobs' events;
        # wired here because webhooks is what needs it (move to campaigns' own
        # AppConfig.ready if anything else does).
        campaign_events_subscribe()
