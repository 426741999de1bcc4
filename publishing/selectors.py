"""Brand-scoped reads for the calendar, the schedules page and the API. Any
member reads; outsiders are turned away by the views (brand_access_get)."""

from .models import CaptionDraft, Channel, Post, PublishAttempt, Schedule, ScheduleRun
from .services import schedule_next


def channels_for_brand(*, brand):
    return Channel.objects.for_brand(brand).select_related("webhook_endpoint")


def channel_get(*, brand, channel_id):
    return channels_for_brand(brand=brand).filter(pk=channel_id).first()


def posts_in_range(*, brand, start, end, channel=None, states=None):
    """Posts whose publish_at is in [start, end) (aware instants), oldest first,
    with asset, persona and channel: the month and week views."""
    posts = (
        Post.objects.for_brand(brand)
        .filter(publish_at__gte=start, publish_at__lt=end)
        .select_related("asset__persona", "channel")
        .order_by("publish_at", "pk")
    )
    if channel is not None:
        posts = posts.filter(channel=channel)
    if states:
        posts = posts.filter(state__in=list(states))
    return posts


def post_get(*, brand, post_id):
    return Post.objects.for_brand(brand).select_related("asset__persona", "channel").filter(pk=post_id).first()


def post_log(*, brand, post):
    """The post's publish attempts, first first, with the connector's answers."""
    return PublishAttempt.objects.for_brand(brand).filter(post=post).order_by("number")


def caption_draft_for(*, brand, asset):
    draft = CaptionDraft.objects.for_brand(brand).filter(asset=asset).first()
    return draft.text if draft else ""


def schedules_for_brand(*, brand, persona=None):
    schedules = Schedule.objects.for_brand(brand).select_related("persona", "created_by")
    return schedules.filter(persona=persona) if persona is not None else schedules


def schedule_get(*, brand, schedule_id):
    return schedules_for_brand(brand=brand).filter(pk=schedule_id).first()


def schedule_next_runs(*, schedule, count=5):
    """The schedule's next `count` due instants (UTC) from its next run (which may
    be overdue until the tick takes it); none when disabled."""
    if not schedule.enabled or schedule.next_run_at is None:
        return []
    runs = [schedule.next_run_at]
    while len(runs) < count:
        runs.append(schedule_next(schedule, after=runs[-1]))
    return runs


def schedule_runs(*, brand, schedule, limit=50):
    return ScheduleRun.objects.for_brand(brand).filter(schedule=schedule).select_related("campaign")[:limit]
