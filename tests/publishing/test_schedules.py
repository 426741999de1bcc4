"""Schedules: saving (checked templates, cron, zone), the tick running each due
time once, missed runs by policy, rotation, and a run's images into review with
caption drafts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from approvals.models import AssetReview, ReviewState
from campaigns.models import Campaign, CampaignItem
from generation.services.jobs import generation_job_run
from publishing import clock
from publishing.models import CaptionDraft, Schedule, ScheduleRun
from publishing.selectors import caption_draft_for, schedule_next_runs
from publishing.services import _schedule_run, rotation_plan, schedule_create, schedule_run_due, schedule_update

from .conftest import NOW

Status = ScheduleRun.Status
TEMPLATES = ["{persona} today #AI-generated", "New day, new {format} ({date}) #AI-generated"]


def hourly(actor, brand, persona, **overrides):
    values = {
        "actor": actor,
        "brand": brand,
        "persona": persona,
        "name": "Morning feed",
        "kind": "cron",
        "cron": "0 * * * *",
        "timezone": "Europe/Berlin",
        "formats": ["1:1", "4:5"],
        "caption_templates": TEMPLATES,
        "images_per_run": 2,
    }
    return schedule_create(**{**values, **overrides})


def test_it_saves_a_schedule_with_its_first_run_in_utc(now, creator, brand, persona):
    daily = hourly(creator, brand, persona, cron="0 9 * * *")
    # 2 March, 09:00 UTC is 10:00 in Berlin: the next 09:00 there is 3 March, 08:00 UTC.
    assert daily.next_run_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
    assert schedule_next_runs(schedule=daily, count=2) == [
        datetime(2026, 3, 3, 8, tzinfo=UTC),
        datetime(2026, 3, 4, 8, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"caption_templates": ["Hi {nickname}"]}, "caption_templates"),
        ({"caption_templates": []}, "caption_templates"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"timezone": "Berlin"}, "timezone"),
        ({"kind": "interval", "interval_seconds": 5}, "interval_seconds"),
        ({"formats": ["3:1"]}, "formats"),
        ({"images_per_run": 0}, "images_per_run"),
        ({"missed_policy": "later"}, "missed_policy"),
    ],
)
def test_it_refuses_a_schedule_naming_the_field(now, creator, brand, persona, overrides, field):
    with pytest.raises(ValidationError) as refused:
        hourly(creator, brand, persona, **overrides)
    assert field in refused.value.message_dict
    assert not Schedule.objects.unscoped().exists()


def test_it_lets_only_creators_and_owners_schedule(now, reviewer, viewer, brand, persona):
    for user in (reviewer, viewer):
        with pytest.raises(PermissionDenied):
            hourly(user, brand, persona)


def test_it_rotates_formats_per_run_and_captions_per_image():
    schedule = Schedule(
        formats=["1:1", "4:5"], looks=[7], poses=[], images_per_run=2, caption_templates=["a", "b", "c"]
    )
    plans = [rotation_plan(schedule, sequence=n) for n in range(3)]
    assert [p["format"] for p in plans] == ["1:1", "4:5", "1:1"]
    assert [p["templates"] for p in plans] == [["a", "b"], ["c", "a"], ["b", "c"]]
    assert {p["look"] for p in plans} == {7} and {p["pose"] for p in plans} == {None}


def test_it_runs_a_due_schedule_once_with_a_campaign_by_its_user(now, creator, brand, persona):
    schedule = hourly(creator, brand, persona)
    due = schedule.next_run_at
    with clock.frozen(due + timedelta(seconds=20)):
        [run] = schedule_run_due()
        assert schedule_run_due() == []
    assert (run.status, run.due_at, run.missed, run.sequence) == (Status.SUBMITTED, due, 0, 0)
    campaign = run.campaign
    assert campaign.created_by == creator and campaign.formats == ["1:1"] and campaign.variants == 2
    assert CampaignItem.objects.for_brand(brand).filter(campaign=campaign).count() == 2
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.runs_made) == (due + timedelta(hours=1), 1)
    with clock.frozen(due + timedelta(hours=1, seconds=5)):
        [second] = schedule_run_due()
    assert second.campaign.formats == ["4:5"]
    # Each run draws its own noise: no run renders another run's pictures again.
    variants = [
        sorted(CampaignItem.objects.for_brand(brand).filter(campaign=r.campaign).values_list("variant", flat=True))
        for r in (run, second)
    ]
    assert variants == [[1, 2], [3, 4]]


def test_it_records_a_due_time_once_even_when_a_tick_sees_it_again(now, creator, brand, persona):
    schedule = hourly(creator, brand, persona)
    due = schedule.next_run_at
    with clock.frozen(due):
        schedule_run_due()
        # A tick that read the schedule before the first one moved it on.
        Schedule.objects.unscoped().filter(pk=schedule.pk).update(next_run_at=due)
        assert _schedule_run(schedule_id=schedule.pk, now=due) is None
    assert ScheduleRun.objects.unscoped().count() == 1 and Campaign.objects.for_brand(brand).count() == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == due + timedelta(hours=1)


@pytest.mark.parametrize(
    ("policy", "status", "campaigns"), [("skip", Status.SKIPPED, 0), ("catch_up_once", Status.SUBMITTED, 1)]
)
def test_it_follows_the_missed_run_policy_after_an_outage(now, creator, brand, persona, policy, status, campaigns):
    schedule = hourly(creator, brand, persona, missed_policy=policy)
    first = schedule.next_run_at
    back = first + timedelta(hours=4, minutes=30)  # beat was down for 4 1/2 hours: 5 due times missed
    with clock.frozen(back):
        [run] = schedule_run_due()
        assert schedule_run_due() == []
    assert (run.status, run.missed, run.due_at) == (status, 5, first + timedelta(hours=4))
    assert Campaign.objects.for_brand(brand).count() == campaigns
    schedule.refresh_from_db()
    assert schedule.next_run_at == first + timedelta(hours=5)


def test_it_runs_a_late_tick_within_the_grace_as_on_time(now, creator, brand, persona):
    schedule = hourly(creator, brand, persona, missed_policy="skip")
    with clock.frozen(schedule.next_run_at + timedelta(seconds=100)):
        [run] = schedule_run_due()
    assert run.status == Status.SUBMITTED and run.missed == 0


def test_it_fails_a_run_in_words_when_its_user_lost_their_role_and_carries_on(now, owner, creator, brand, persona):
    from brands.models import Membership

    schedule = hourly(creator, brand, persona)
    Membership.objects.filter(user=creator, brand=brand).update(role="viewer")
    with clock.frozen(schedule.next_run_at):
        [run] = schedule_run_due()
    assert run.status == Status.FAILED and "may not" in run.error
    schedule.refresh_from_db()
    assert schedule.runs_made == 0 and schedule.next_run_at > run.due_at


def test_it_disables_and_reenables_a_schedule(now, creator, brand, persona):
    schedule = hourly(creator, brand, persona)
    schedule = schedule_update(actor=creator, brand=brand, schedule=schedule, enabled=False)
    assert schedule.next_run_at is None and schedule_next_runs(schedule=schedule) == []
    schedule = schedule_update(actor=creator, brand=brand, schedule=schedule, enabled=True, cron="30 8 * * *")
    assert schedule.next_run_at == datetime(2026, 3, 3, 7, 30, tzinfo=UTC)


def test_it_sends_a_runs_images_to_review_with_their_caption_drafts(
    now, creator, brand, persona, media_root, django_capture_on_commit_callbacks
):
    schedule = hourly(creator, brand, persona)
    with clock.frozen(schedule.next_run_at):
        [run] = schedule_run_due()
    items = list(CampaignItem.objects.for_brand(brand).filter(campaign=run.campaign).order_by("pk"))
    with django_capture_on_commit_callbacks(execute=True):
        for item in items:
            generation_job_run(job_id=item.job_id)
    run.refresh_from_db()
    assert run.status == Status.IN_REVIEW and run.submitted_for_review_at is not None
    reviews = AssetReview.objects.for_brand(brand).filter(asset__job_id__in=[i.job_id for i in items])
    assert [r.state for r in reviews] == [ReviewState.IN_REVIEW] * 2
    assert {r.submitted_by for r in reviews} == {creator}
    drafts = CaptionDraft.objects.for_brand(brand).order_by("asset_id")
    assert [d.text for d in drafts] == ["Ava today #AI-generated", "New day, new 1:1 (2026-03-02) #AI-generated"]
    assert caption_draft_for(brand=brand, asset=drafts[0].asset) == "Ava today #AI-generated"
    assert NOW  # the frozen clock's date is the run's date in Berlin
