"""The publishing pages: calendar (month, week, moving a post by drag or form),
posts (create from an approved image, detail with the publish log, cancel),
channels (owners) and schedules (creators and owners). Members read, viewers
change nothing (403), outsiders see nothing (404)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from publishing import clock
from publishing.models import CaptionDraft, Channel, Post, Schedule
from publishing.services import channel_create, post_create, post_publish, schedule_create
from tests.conftest import PASSWORD
from tests.publishing.conftest import approve
from webhooks.services import webhook_endpoint_create

# A Monday; the dashboard's time zone in tests is settings.TIME_ZONE (UTC).
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAPTION = "Spring is here #AI-generated"


@pytest.fixture(autouse=True)
def _frozen_clock_and_memory_broker(memory_broker):
    with clock.frozen(NOW):
        yield


def log_in(client, user):
    client.login(username=user.get_username(), password=PASSWORD)


def url(name, brand, *args, **query):
    path = reverse(name, args=[brand.slug, *args])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def approved(creator, reviewer, brand, assets):
    return approve(creator=creator, reviewer=reviewer, brand=brand, asset=assets[0])


@pytest.fixture
def channel(owner, brand):
    return channel_create(
        actor=owner,
        brand=brand,
        name="Archive",
        kind="export",
        config={"prefix": "feed"},
        caption_labels=["AI-generated"],
    )


@pytest.fixture
def post(creator, brand, approved, channel):
    return post_create(
        actor=creator,
        brand=brand,
        asset=approved,
        channel=channel,
        publish_at=NOW + timedelta(hours=3),
        caption=CAPTION,
    )


@pytest.fixture
def schedule(creator, brand, persona):
    return schedule_create(
        actor=creator,
        brand=brand,
        persona=persona,
        name="Mornings",
        kind="cron",
        cron="30 10 * * *",
        timezone="UTC",
        formats=["1:1"],
        caption_templates=["{persona} on {date} #AI-generated"],
    )


@pytest.fixture
def endpoint(settings, owner, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    hook, _secret = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1:9/", events=["job.failed"])
    return hook


# --------------------------------------------------------------------------- calendar


def test_it_shows_a_month_of_posts_and_schedule_runs_with_a_move_form_for_creators(
    client, creator, brand, post, schedule
):
    log_in(client, creator)
    response = client.get(url("publishing-calendar", brand))
    assert response.status_code == 200
    page = response.content.decode()
    assert "March 2026" in page and "Times in UTC" in page
    day = page.split('id="day-2026-03-02"')[1].split("</td>")[0]
    assert f'id="post-{post.pk}"' in day and 'draggable="true"' in day
    assert "12:00" in day and "Archive" in day and "Scheduled" in day
    assert reverse("asset-image", args=[brand.slug, post.asset_id]) in day
    assert 'name="publish_at" value="2026-03-02T12:00:00"' in day
    assert "⟳ 10:30 Mornings" in day
    # Every later day of the month shows the schedule's run; the days before now do not.
    assert "⟳ 10:30 Mornings" in page.split('id="day-2026-03-31"')[1].split("</td>")[0]
    assert "⟳" not in page.split('id="day-2026-03-01"')[1].split("</td>")[0]
    assert "publishing_calendar.js" in page


def test_it_shows_a_week_in_hourly_slots(client, viewer, brand, post, schedule):
    log_in(client, viewer)
    response = client.get(url("publishing-calendar", brand, view="week", date="2026-03-04"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Week of 02 March 2026" in page
    slot = page.split('id="slot-2026-03-02T12"')[1].split("</td>")[0]
    assert f'id="post-{post.pk}"' in slot
    assert "⟳ 10:30 Mornings" in page.split('id="slot-2026-03-03T10"')[1].split("</td>")[0]
    # A viewer reads, but has nothing to drag or submit.
    assert 'draggable="true"' not in page and "Move…" not in page
    previous = client.get(url("publishing-calendar", brand, view="week", date="2026-02-23")).content.decode()
    assert f'id="post-{post.pk}"' not in previous


def test_it_shows_published_failed_and_lapsed_posts_but_not_cancelled_ones(
    client, creator, brand, post, approved, channel
):
    Post.objects.for_brand(brand).filter(pk=post.pk).update(state=Post.State.LAPSED)
    log_in(client, creator)
    page = client.get(url("publishing-calendar", brand)).content.decode()
    chip = page.split(f'id="post-{post.pk}"')[0].rsplit("<div", 1)[1] + page.split(f'id="post-{post.pk}"')[1][:900]
    assert "state-lapsed" in chip and "Lapsed" in chip and "Move…" not in chip
    Post.objects.for_brand(brand).filter(pk=post.pk).update(state=Post.State.CANCELLED)
    assert f'id="post-{post.pk}"' not in client.get(url("publishing-calendar", brand)).content.decode()


# --------------------------------------------------------------------------- moving a post


def test_it_moves_a_post_from_the_form_and_says_so(client, creator, brand, post):
    log_in(client, creator)
    calendar = url("publishing-calendar", brand)
    response = client.post(
        url("post-reschedule", brand, post.pk), {"publish_at": "2026-03-05T12:00:00", "next": calendar}, follow=True
    )
    assert response.redirect_chain[-1][0] == calendar
    assert f"Moved post {post.pk} to 2026-03-05 12:00." in response.content.decode()
    post.refresh_from_db()
    assert post.publish_at == datetime(2026, 3, 5, 12, tzinfo=UTC)


def test_it_moves_a_post_by_drag_answering_json(client, creator, brand, post):
    log_in(client, creator)
    response = client.post(
        url("post-reschedule", brand, post.pk), {"publish_at": "2026-03-04T15:00:00"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "publish_at": "2026-03-04T15:00:00", "message": "Moved to 2026-03-04 15:00."}


def test_it_refuses_a_move_into_the_past_in_plain_words(client, creator, brand, post):
    log_in(client, creator)
    response = client.post(
        url("post-reschedule", brand, post.pk), {"publish_at": "2026-03-01T09:00"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "Choose a time in the future."}
    response = client.post(url("post-reschedule", brand, post.pk), {"publish_at": "not a time"}, follow=True)
    assert f"Post {post.pk} was not moved: Give the new time as a date and time" in response.content.decode()
    post.refresh_from_db()
    assert post.publish_at == NOW + timedelta(hours=3)


def test_it_lapses_a_post_moved_after_its_time_passed_long_ago(client, creator, brand, post):
    log_in(client, creator)
    with clock.frozen(NOW + timedelta(hours=5)):
        response = client.post(
            url("post-reschedule", brand, post.pk), {"publish_at": "2026-03-03T09:00"}, HTTP_ACCEPT="application/json"
        )
    assert response.status_code == 400
    assert "approval lapsed" in response.json()["error"]
    post.refresh_from_db()
    assert post.state == Post.State.LAPSED


def test_it_lets_viewers_and_reviewers_not_move_or_cancel(client, viewer, reviewer, brand, post):
    for user in (viewer, reviewer):
        log_in(client, user)
        assert (
            client.post(url("post-reschedule", brand, post.pk), {"publish_at": "2026-03-05T12:00"}).status_code == 403
        )
        assert client.post(url("post-cancel", brand, post.pk)).status_code == 403
    post.refresh_from_db()
    assert post.state == Post.State.SCHEDULED and post.publish_at == NOW + timedelta(hours=3)


# --------------------------------------------------------------------------- creating a post


def test_it_prefills_the_caption_draft_and_shows_each_channels_rules(client, creator, brand, approved, channel):
    CaptionDraft.objects.for_brand(brand).create(brand=brand, asset=approved, text="Ava in spring #AI-generated")
    log_in(client, creator)
    response = client.get(url("post-create", brand, asset=approved.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ava in spring #AI-generated</textarea>" in page
    rules = page.split('id="channel-rules"')[1].split("</ul>")[0]
    assert "Archive" in rules and '“<span class="label">AI-generated</span>”' in rules
    assert "C2PA manifest" in rules and "trainedAlgorithmicMedia" in rules
    assert 'value="2026-03-02T10:00:00"' in page  # the next full hour


def test_it_schedules_a_post_from_an_approved_image(client, creator, brand, approved, channel):
    log_in(client, creator)
    response = client.post(
        url("post-create", brand),
        {"asset": approved.pk, "channel": channel.pk, "caption": CAPTION, "publish_at": "2026-03-02T18:30"},
    )
    post = Post.objects.for_brand(brand).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("post-detail", args=[brand.slug, post.pk])
    assert (post.asset, post.channel, post.caption, post.state) == (approved, channel, CAPTION, Post.State.SCHEDULED)
    assert post.publish_at == datetime(2026, 3, 2, 18, 30, tzinfo=UTC)
    assert post.created_by == creator


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"publish_at": "2026-03-02T08:00"}, "Choose a time in the future."),
        ({"caption": "No label here"}, "Archive requires the caption to carry “AI-generated”."),
        ({"publish_at": ""}, "This field is required."),
    ],
)
def test_it_shows_refusals_as_form_errors(client, creator, brand, approved, channel, changes, expected):
    log_in(client, creator)
    data = {
        "asset": approved.pk,
        "channel": channel.pk,
        "caption": CAPTION,
        "publish_at": "2026-03-02T18:30",
        **changes,
    }
    response = client.post(url("post-create", brand), data)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not Post.objects.for_brand(brand).exists()


def test_it_refuses_to_post_an_image_that_is_not_approved(client, creator, brand, assets, channel):
    log_in(client, creator)
    page = client.get(url("post-create", brand, asset=assets[1].pk)).content.decode()
    assert "Not submitted for review" in page
    response = client.post(
        url("post-create", brand),
        {"asset": assets[1].pk, "channel": channel.pk, "caption": CAPTION, "publish_at": "2026-03-02T18:30"},
    )
    assert response.status_code == 400
    assert "This image has not been approved" in response.content.decode()
    assert not Post.objects.for_brand(brand).exists()


def test_it_says_when_there_is_no_channel_yet(client, owner, brand, approved):
    log_in(client, owner)
    page = client.get(url("post-create", brand, asset=approved.pk)).content.decode()
    assert 'id="no-channels"' in page and reverse("channel-list", args=[brand.slug]) in page


def test_it_lets_only_creators_and_owners_open_the_post_form(client, viewer, reviewer, brand, approved, channel):
    for user in (viewer, reviewer):
        log_in(client, user)
        assert client.get(url("post-create", brand, asset=approved.pk)).status_code == 403
    log_in(client, viewer)
    assert client.get(url("post-create", brand, asset=999999)).status_code == 403


def test_it_answers_404_for_a_missing_asset(client, creator, brand):
    log_in(client, creator)
    assert client.get(url("post-create", brand)).status_code == 404
    assert client.get(url("post-create", brand, asset="x")).status_code == 404
    assert client.get(url("post-create", brand, asset=999999)).status_code == 404


# --------------------------------------------------------------------------- post page


def test_it_shows_a_post_with_its_publish_log(client, viewer, brand, post):
    with clock.frozen(NOW + timedelta(hours=3, seconds=5)):
        assert post_publish(post_id=post.pk) == Post.State.PUBLISHED
    log_in(client, viewer)
    page = client.get(url("post-detail", brand, post.pk)).content.decode()
    assert "<strong>Published</strong>" in page
    log = page.split('id="publish-log"')[1].split("</table>")[0]
    assert 'id="attempt-1"' in log and "published" in log and "Wrote feed/acme/2026/03/02/" in log
    assert CAPTION in page and str(post.idempotency_key) in page
    assert 'id="post-move"' not in page


def test_it_shows_why_a_post_is_blocked(client, creator, brand, post):
    Post.objects.for_brand(brand).filter(pk=post.pk).update(
        state=Post.State.FAILED, blocked_reason="Archive requires a valid C2PA manifest in the file."
    )
    log_in(client, creator)
    page = client.get(url("post-detail", brand, post.pk)).content.decode()
    assert "Blocked: Archive requires a valid C2PA manifest in the file." in page
    assert 'id="post-move"' in page  # a failed post may be moved or cancelled


def test_it_cancels_a_post(client, creator, brand, post):
    log_in(client, creator)
    page = client.get(url("post-detail", brand, post.pk)).content.decode()
    assert 'id="post-cancel"' in page and 'value="2026-03-02T12:00:00"' in page
    response = client.post(url("post-cancel", brand, post.pk), follow=True)
    assert f"Cancelled post {post.pk}" in response.content.decode()
    post.refresh_from_db()
    assert post.state == Post.State.CANCELLED
    again = client.post(url("post-cancel", brand, post.pk), follow=True).content.decode()
    assert "A cancelled post cannot be cancelled." in again


def test_it_answers_404_for_another_brands_post(client, outsider, other_brand, brand, post):
    log_in(client, outsider)
    assert client.get(url("post-detail", other_brand, post.pk)).status_code == 404


# --------------------------------------------------------------------------- channels


def test_it_lists_channels_with_their_policy_to_members(client, viewer, brand, channel):
    log_in(client, viewer)
    page = client.get(url("channel-list", brand)).content.decode()
    row = page.split(f'id="channel-{channel.pk}"')[1].split("</tr>")[0]
    assert "Archive" in row and "“AI-generated”" in row and "C2PA manifest" in row and "<code>feed/</code>" in row
    assert 'id="channel-new"' not in page and reverse("channel-edit", args=[brand.slug, channel.pk]) not in page


def test_it_lets_owners_add_a_webhook_channel_with_its_policy(client, owner, brand, endpoint):
    log_in(client, owner)
    page = client.get(url("channel-list", brand)).content.decode()
    assert 'id="channel-new"' in page and "Signed webhook" in page and "File / bucket export" in page
    response = client.post(
        url("channel-list", brand),
        {
            "name": "Feed",
            "kind": "webhook",
            "webhook_endpoint": endpoint.pk,
            "caption_labels": "AI-generated\n#virtualinfluencer",
            "require_c2pa": "on",
        },
        follow=True,
    )
    assert "Added the channel Feed." in response.content.decode()
    channel = Channel.objects.for_brand(brand).get(name="Feed")
    assert (channel.kind, channel.webhook_endpoint, channel.caption_labels) == (
        "webhook",
        endpoint,
        ["AI-generated", "#virtualinfluencer"],
    )
    assert channel.require_c2pa and not channel.require_digital_source_type


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "Feed", "kind": "webhook"}, "Choose the webhook endpoint that receives the posts."),
        ({"name": "Archive", "kind": "export"}, "This brand already has a channel called"),
        ({"name": "Disk", "kind": "export", "prefix": "../up"}, "The prefix is a relative folder"),
        ({"name": "Disk", "kind": "carrier-pigeon"}, "Select a valid choice."),
    ],
)
def test_it_shows_channel_refusals_as_form_errors(client, owner, brand, channel, data, expected):
    log_in(client, owner)
    response = client.post(url("channel-list", brand), data)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert Channel.objects.for_brand(brand).count() == 1


def test_it_lets_owners_edit_a_channel(client, owner, brand, channel):
    log_in(client, owner)
    page = client.get(url("channel-edit", brand, channel.pk)).content.decode()
    assert 'value="feed"' in page and "AI-generated</textarea>" in page
    response = client.post(
        url("channel-edit", brand, channel.pk),
        {"name": "Archive", "prefix": "feed2", "caption_labels": "AI-generated, #ai", "enabled": ""},
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.config == {"prefix": "feed2"} and channel.caption_labels == ["AI-generated", "#ai"]
    assert not channel.enabled and not channel.require_c2pa
    response = client.post(url("channel-edit", brand, channel.pk), {"name": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_it_keeps_channel_changes_to_owners(client, creator, viewer, brand, channel):
    for user in (creator, viewer):
        log_in(client, user)
        assert client.post(url("channel-list", brand), {"name": "X", "kind": "export"}).status_code == 403
        assert client.get(url("channel-edit", brand, channel.pk)).status_code == 403
        assert client.post(url("channel-edit", brand, channel.pk), {"name": "X"}).status_code == 403
    assert Channel.objects.for_brand(brand).get().name == "Archive"


def test_it_answers_404_for_a_missing_channel(client, owner, brand):
    log_in(client, owner)
    assert client.get(url("channel-edit", brand, 999999)).status_code == 404


# --------------------------------------------------------------------------- schedules

SCHEDULE = {
    "name": "Weekdays",
    "kind": "cron",
    "cron": "0 9 * * 1-5",
    "timezone": "Europe/Berlin",
    "starts_at": "",
    "images_per_run": "2",
    "formats": ["1:1", "4:5"],
    "caption_templates": "{persona} on {date} #AI-generated\n{handle} again #AI-generated",
    "missed_policy": "catch_up_once",
    "enabled": "on",
}


def test_it_lists_schedules_per_persona_with_next_runs(client, viewer, brand, persona, schedule):
    log_in(client, viewer)
    page = client.get(url("schedule-list", brand)).content.decode()
    assert f'id="persona-{persona.pk}"' in page
    row = page.split(f'id="schedule-{schedule.pk}"')[1].split("</tr>")[0]
    assert "Mornings" in row and "<code>30 10 * * *</code>" in row
    assert "Mon 2026-03-02 10:30" in row and "Tue 2026-03-03 10:30" in row and "Wed 2026-03-04 10:30" in row
    assert 'id="schedule-new"' not in page


def test_it_creates_a_cron_schedule_in_its_time_zone(client, creator, brand, persona):
    log_in(client, creator)
    page = client.get(url("schedule-list", brand)).content.decode()
    assert 'id="schedule-new"' in page and '<option value="Europe/Berlin"' in page
    response = client.post(url("schedule-list", brand), {**SCHEDULE, "persona": persona.pk})
    schedule = Schedule.objects.for_brand(brand).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("schedule-detail", args=[brand.slug, schedule.pk])
    assert (schedule.cron, schedule.timezone, schedule.images_per_run) == ("0 9 * * 1-5", "Europe/Berlin", 2)
    assert schedule.formats == ["1:1", "4:5"] and schedule.missed_policy == "catch_up_once"
    assert schedule.caption_templates == ["{persona} on {date} #AI-generated", "{handle} again #AI-generated"]
    # 09:00 in Berlin (CET, UTC+1) on Tuesday: the Monday one has passed at 09:00 UTC.
    assert schedule.next_run_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
    assert schedule.created_by == creator


def test_it_creates_an_interval_schedule_from_a_start_in_its_zone(client, owner, brand, persona):
    log_in(client, owner)
    data = {
        **SCHEDULE,
        "persona": persona.pk,
        "kind": "interval",
        "cron": "",
        "interval_minutes": "90",
        "starts_at": "2026-03-02T12:00",
        "timezone": "America/New_York",
    }
    assert client.post(url("schedule-list", brand), data).status_code == 302
    schedule = Schedule.objects.for_brand(brand).get()
    assert schedule.interval_seconds == 5400
    assert schedule.starts_at == schedule.next_run_at == datetime(2026, 3, 2, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"caption_templates": "Hi {name}"}, "caption_templates", "Unknown placeholder {name}"),
        ({"cron": "61 * * * *"}, "cron", "is not a valid cron expression"),
        ({"cron": ""}, "cron", "Give the cron expression."),
        ({"kind": "interval", "interval_minutes": ""}, "interval_minutes", "Give the interval in minutes."),
        ({"formats": []}, "formats", "This field is required."),
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice."),
        ({"images_per_run": "99"}, "images_per_run", "less than or equal to 16"),
    ],
)
def test_it_shows_schedule_refusals_under_their_field(client, creator, brand, persona, changes, field, expected):
    log_in(client, creator)
    response = client.post(url("schedule-list", brand), {**SCHEDULE, "persona": persona.pk, **changes})
    assert response.status_code == 400
    errors = response.content.decode().split(f'id="field-{field}"')[1].split("</p>")[0]
    assert expected in errors
    assert not Schedule.objects.for_brand(brand).exists()


def test_it_shows_a_schedule_and_saves_changes(client, creator, brand, schedule):
    log_in(client, creator)
    page = client.get(url("schedule-detail", brand, schedule.pk)).content.decode()
    assert "Mon 2026-03-02 10:30" in page.split('id="next-runs"')[1]
    assert 'value="30 10 * * *"' in page and 'id="field-persona"' not in page
    data = {**SCHEDULE, "name": "Evenings", "cron": "0 18 * * *", "timezone": "UTC", "enabled": ""}
    response = client.post(url("schedule-detail", brand, schedule.pk), data, follow=True)
    assert "Saved the schedule Evenings." in response.content.decode()
    schedule.refresh_from_db()
    assert (schedule.name, schedule.cron, schedule.enabled, schedule.next_run_at) == (
        "Evenings",
        "0 18 * * *",
        False,
        None,
    )
    assert "None: the schedule is paused." in response.content.decode()
    bad = client.post(url("schedule-detail", brand, schedule.pk), {**data, "caption_templates": "{x}"})
    assert bad.status_code == 400 and "Unknown placeholder {x}" in bad.content.decode()


def test_it_deletes_a_schedule(client, creator, brand, schedule):
    log_in(client, creator)
    response = client.post(url("schedule-delete", brand, schedule.pk), follow=True)
    assert "Deleted the schedule Mornings" in response.content.decode()
    assert not Schedule.objects.for_brand(brand).exists()


def test_it_lets_viewers_read_schedules_but_not_change_them(client, viewer, reviewer, brand, persona, schedule):
    for user in (viewer, reviewer):
        log_in(client, user)
        page = client.get(url("schedule-detail", brand, schedule.pk))
        assert page.status_code == 200 and 'id="schedule-edit"' not in page.content.decode()
        assert client.post(url("schedule-list", brand), {**SCHEDULE, "persona": persona.pk}).status_code == 403
        assert client.post(url("schedule-detail", brand, schedule.pk), SCHEDULE).status_code == 403
        assert client.post(url("schedule-delete", brand, schedule.pk)).status_code == 403
    assert Schedule.objects.for_brand(brand).get().name == "Mornings"


# --------------------------------------------------------------------------- outsiders


def test_it_answers_404_to_outsiders_on_every_publishing_page(client, outsider, other_brand, brand, post, schedule):
    log_in(client, outsider)
    pages = [
        ("get", url("publishing-calendar", brand)),
        ("get", url("publishing-calendar", brand, view="week")),
        ("get", url("post-create", brand, asset=post.asset_id)),
        ("post", url("post-create", brand)),
        ("get", url("post-detail", brand, post.pk)),
        ("post", url("post-reschedule", brand, post.pk)),
        ("post", url("post-cancel", brand, post.pk)),
        ("get", url("channel-list", brand)),
        ("post", url("channel-list", brand)),
        ("get", url("channel-edit", brand, post.channel_id)),
        ("get", url("schedule-list", brand)),
        ("post", url("schedule-list", brand)),
        ("get", url("schedule-detail", brand, schedule.pk)),
        ("post", url("schedule-delete", brand, schedule.pk)),
    ]
    for method, page in pages:
        response = getattr(client, method)(page, HTTP_ACCEPT="application/json" if "reschedule" in page else "*/*")
        assert response.status_code == 404, (method, page, response.status_code)
    post.refresh_from_db()
    assert post.state == Post.State.SCHEDULED and Schedule.objects.for_brand(brand).exists()
