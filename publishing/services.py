"""Publishing services: channels, schedules and their runs, posts and their
publication. Each write and its audit row in one transaction; tasks and events
after commit. Every "now" comes from publishing.clock.

Who: owners set up channels; creators and owners schedule and post; reviewers
and viewers read (publishing.selectors). A schedule's runs act as the user who
made it (the campaign's creator, the reviews' submitter).
"""

import hashlib
import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from approvals.models import RELEASED_STATES, AssetReview, ReviewState
from approvals.services import review_publishing_move, reviews_submit
from audit.services import audit_record
from avatars.models import LibraryItem
from brands.models import CREATE_ROLES, Role
from brands.selectors import brand_role_require
from campaigns.models import CampaignItem
from campaigns.services import FIRST_VARIANT_MAX, MAX_VARIANTS, campaign_submit, recipe_build
from common.events import event_emit
from config.celery import app as celery_app
from content.formats import FORMATS
from content.models import Asset
from content.services import asset_file_open, asset_release_withdraw

from . import clock, timing
from .captions import CAPTION_MAX, TEMPLATES_MAX, caption_render, template_check
from .conf import setting
from .connectors import PublishRequest, PublishResult, connector_class, connector_for
from .disclosure import caption_problems, file_problems
from .models import ApprovalLapse, CaptionDraft, Channel, Post, PublishAttempt, Schedule, ScheduleRun

log = logging.getLogger(__name__)

PUBLISH_TASK = "publishing.publish"
# An attempt holds its post this long (well past a connector's timeout).
ATTEMPT_LEASE = timedelta(seconds=120)
COUNTDOWN_MAX_SECONDS = 300
TICK_LIMIT = 200
LABELS_MAX, LABEL_LENGTH_MAX = 10, 60
ROTATION_MAX = 12
ERROR_MAX = 2000
State = Post.State


# --------------------------------------------------------------------------- channels


def _labels_clean(labels):
    labels = [str(label).strip() for label in (labels or [])]
    if len(labels) > LABELS_MAX or any(not label or len(label) > LABEL_LENGTH_MAX for label in labels):
        raise ValidationError(
            {"caption_labels": f"At most {LABELS_MAX} labels of 1 to {LABEL_LENGTH_MAX} characters each."}
        )
    return list(dict.fromkeys(labels))


@transaction.atomic
def channel_create(
    *,
    actor,
    brand,
    name,
    kind,
    config=None,
    webhook_endpoint=None,
    caption_labels=(),
    require_c2pa=True,
    require_digital_source_type=True,
):
    """A channel of the brand with its disclosure policy. Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationError({"name": "Give the channel a name of at most 80 characters."})
    if Channel.objects.for_brand(brand).filter(name=name).exists():
        raise ValidationError({"name": f"This brand already has a channel called {name!r}."})
    config = connector_class(kind).config_clean(brand=brand, config=config, webhook_endpoint=webhook_endpoint)
    channel = Channel.objects.create(
        brand=brand,
        name=name,
        kind=kind,
        config=config,
        webhook_endpoint=webhook_endpoint,
        caption_labels=_labels_clean(caption_labels),
        require_c2pa=bool(require_c2pa),
        require_digital_source_type=bool(require_digital_source_type),
        created_by=actor,
    )
    audit_record(actor=actor, brand=brand, action="channel.created", target=channel, after=_channel_summary(channel))
    return channel


CHANNEL_FIELDS = (
    "name",
    "config",
    "webhook_endpoint",
    "caption_labels",
    "require_c2pa",
    "require_digital_source_type",
    "enabled",
)


@transaction.atomic
def channel_update(*, actor, brand, channel, **changes):
    """Change a channel's name, settings, policy or enabled flag. Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    unknown = set(changes) - set(CHANNEL_FIELDS)
    if unknown:
        raise ValidationError({field: "This cannot be changed." for field in unknown})
    channel = Channel.objects.for_brand(brand).select_for_update().get(pk=channel.pk)
    before = _channel_summary(channel)
    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name or len(name) > 80:
            raise ValidationError({"name": "Give the channel a name of at most 80 characters."})
        if Channel.objects.for_brand(brand).filter(name=name).exclude(pk=channel.pk).exists():
            raise ValidationError({"name": f"This brand already has a channel called {name!r}."})
        channel.name = name
    if "caption_labels" in changes:
        channel.caption_labels = _labels_clean(changes["caption_labels"])
    for flag in ("require_c2pa", "require_digital_source_type", "enabled"):
        if flag in changes:
            setattr(channel, flag, bool(changes[flag]))
    if "webhook_endpoint" in changes:
        channel.webhook_endpoint = changes["webhook_endpoint"]
    channel.config = connector_class(channel.kind).config_clean(
        brand=brand, config=changes.get("config", channel.config), webhook_endpoint=channel.webhook_endpoint
    )
    channel.save()
    audit_record(
        actor=actor,
        brand=brand,
        action="channel.updated",
        target=channel,
        before=before,
        after=_channel_summary(channel),
    )
    return channel


def _channel_summary(channel):
    return {
        "name": channel.name,
        "kind": channel.kind,
        "config": channel.config,
        "webhook_endpoint": channel.webhook_endpoint_id,
        "caption_labels": channel.caption_labels,
        "require_c2pa": channel.require_c2pa,
        "require_digital_source_type": channel.require_digital_source_type,
        "enabled": channel.enabled,
    }


# --------------------------------------------------------------------------- schedules

SCHEDULE_FIELDS = (
    "name",
    "kind",
    "cron",
    "interval_seconds",
    "timezone",
    "starts_at",
    "images_per_run",
    "looks",
    "poses",
    "formats",
    "caption_templates",
    "missed_policy",
    "enabled",
)


def _ids(items):
    return [item.pk if hasattr(item, "pk") else int(item) for item in items or []]


def _schedule_clean(*, actor, brand, persona, values):
    """The schedule's fields checked; ValidationError with every field's problem."""
    errors = {}
    cleaned = dict(values)
    if persona.brand_id != brand.pk:
        errors["persona"] = "No such persona in this brand."
    name = str(values.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = "Give the schedule a name of at most 120 characters."
    cleaned["name"] = name
    kind = values.get("kind")
    if kind == Schedule.Kind.CRON:
        cleaned["interval_seconds"] = None
        try:
            cleaned["cron"] = timing.cron_check(values.get("cron"))
        except ValueError as exc:
            errors["cron"] = str(exc)
    elif kind == Schedule.Kind.INTERVAL:
        cleaned["cron"] = ""
        seconds = values.get("interval_seconds")
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not timing.INTERVAL_MIN_SECONDS <= seconds <= timing.INTERVAL_MAX_SECONDS
        ):
            errors["interval_seconds"] = (
                f"An interval is a whole number of seconds from {timing.INTERVAL_MIN_SECONDS} "
                f"to {timing.INTERVAL_MAX_SECONDS} (a year)."
            )
    else:
        errors["kind"] = "Choose a cron expression or an interval."
    try:
        timing.zone_get(values.get("timezone"))
    except ValueError as exc:
        errors["timezone"] = str(exc)
    starts_at = values.get("starts_at")
    if starts_at is None or starts_at.tzinfo is None:
        errors["starts_at"] = "Give the start as an aware date and time."
    images = values.get("images_per_run")
    if not isinstance(images, int) or isinstance(images, bool) or not 1 <= images <= MAX_VARIANTS:
        errors["images_per_run"] = f"A run makes 1 to {MAX_VARIANTS} images."
    formats = list(values.get("formats") or [])
    if not formats or any(fmt not in FORMATS for fmt in formats) or len(formats) > ROTATION_MAX:
        errors["formats"] = f"Choose 1 to {ROTATION_MAX} formats among {', '.join(FORMATS)}."
    cleaned["formats"] = formats
    for field, item_kind in (("looks", LibraryItem.Kind.LOOK), ("poses", LibraryItem.Kind.POSE)):
        ids = _ids(values.get(field))
        found = set(
            LibraryItem.objects.for_brand(brand).filter(kind=item_kind, pk__in=ids).values_list("pk", flat=True)
        )
        if len(ids) > ROTATION_MAX or set(ids) - found:
            errors[field] = f"Choose at most {ROTATION_MAX} {field} from this brand's library."
        cleaned[field] = ids
    templates = values.get("caption_templates") or []
    if isinstance(templates, str) or not 1 <= len(templates) <= TEMPLATES_MAX:
        errors["caption_templates"] = f"Give 1 to {TEMPLATES_MAX} caption templates."
    else:
        try:
            cleaned["caption_templates"] = [template_check(template) for template in templates]
        except ValueError as exc:
            errors["caption_templates"] = str(exc)
    if values.get("missed_policy") not in Schedule.MissedPolicy.values:
        errors["missed_policy"] = "Missed runs are skipped or caught up once."
    if errors:
        raise ValidationError(errors)
    _rotation_check(actor=actor, brand=brand, persona=persona, looks=cleaned["looks"], poses=cleaned["poses"])
    return cleaned


def _rotation_check(*, actor, brand, persona, looks, poses):
    """Every look with every pose applies to the persona (the rotation meets each pair)."""
    items = LibraryItem.objects.for_brand(brand).in_bulk(looks + poses)
    version = persona.current_version
    changes = {}
    for look_id in looks or [None]:
        for pose_id in poses or [None]:
            try:
                recipe_build(
                    actor=actor,
                    brand=brand,
                    version=version,
                    look=items.get(look_id),
                    pose=items.get(pose_id),
                    changes=changes,
                )
            except ValidationError as exc:
                raise ValidationError({"looks" if pose_id is None else "poses": " ".join(exc.messages)}) from None


def schedule_next(schedule, *, after):
    """The schedule's first due instant strictly after `after` (UTC)."""
    if schedule.kind == Schedule.Kind.INTERVAL:
        return timing.interval_next(seconds=schedule.interval_seconds, anchor=schedule.starts_at, after=after)
    start = max(after, schedule.starts_at - timedelta(microseconds=1))
    return timing.cron_next(schedule.cron, zone=timing.zone_get(schedule.timezone), after=start)


@transaction.atomic
def schedule_create(
    *,
    actor,
    brand,
    persona,
    name,
    kind,
    formats,
    caption_templates,
    timezone,
    cron="",
    interval_seconds=None,
    starts_at=None,
    images_per_run=1,
    looks=(),
    poses=(),
    missed_policy=Schedule.MissedPolicy.SKIP,
    enabled=True,
):
    """A persona's schedule; its first run is the first due time after now (and
    not before starts_at). Creators and owners; the runs act as `actor`."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    now = clock.now()
    values = _schedule_clean(
        actor=actor,
        brand=brand,
        persona=persona,
        values={
            "name": name,
            "kind": kind,
            "cron": cron,
            "interval_seconds": interval_seconds,
            "timezone": timezone,
            "starts_at": starts_at or now,
            "images_per_run": images_per_run,
            "looks": looks,
            "poses": poses,
            "formats": formats,
            "caption_templates": caption_templates,
            "missed_policy": missed_policy,
        },
    )
    schedule = Schedule(brand=brand, persona=persona, enabled=bool(enabled), created_by=actor, **values)
    schedule.next_run_at = schedule_next(schedule, after=now) if schedule.enabled else None
    schedule.save()
    audit_record(
        actor=actor, brand=brand, action="schedule.created", target=schedule, after=_schedule_summary(schedule)
    )
    return schedule


@transaction.atomic
def schedule_update(*, actor, brand, schedule, **changes):
    """Change a schedule; its next run is worked out again from now. Creators and owners."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ValidationError({field: "This cannot be changed." for field in unknown})
    locked = Schedule.objects.for_brand(brand).select_for_update().select_related("persona").get(pk=schedule.pk)
    before = _schedule_summary(locked)
    values = {field: changes.get(field, getattr(locked, field)) for field in SCHEDULE_FIELDS if field != "enabled"}
    values = _schedule_clean(actor=actor, brand=brand, persona=locked.persona, values=values)
    for field, value in values.items():
        setattr(locked, field, value)
    locked.enabled = bool(changes.get("enabled", locked.enabled))
    locked.next_run_at = schedule_next(locked, after=clock.now()) if locked.enabled else None
    locked.save()
    audit_record(
        actor=actor,
        brand=brand,
        action="schedule.updated",
        target=locked,
        before=before,
        after=_schedule_summary(locked),
    )
    return locked


@transaction.atomic
def schedule_delete(*, actor, brand, schedule):
    """Delete a schedule and its run history; the campaigns it made stay."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    locked = Schedule.objects.for_brand(brand).select_for_update().get(pk=schedule.pk)
    audit_record(actor=actor, brand=brand, action="schedule.deleted", target=locked, before=_schedule_summary(locked))
    locked.delete()


def _schedule_summary(schedule):
    return {
        "name": schedule.name,
        "persona": schedule.persona_id,
        "kind": schedule.kind,
        "cron": schedule.cron,
        "interval_seconds": schedule.interval_seconds,
        "timezone": schedule.timezone,
        "starts_at": schedule.starts_at.isoformat(),
        "images_per_run": schedule.images_per_run,
        "looks": schedule.looks,
        "poses": schedule.poses,
        "formats": schedule.formats,
        "caption_templates": schedule.caption_templates,
        "missed_policy": schedule.missed_policy,
        "enabled": schedule.enabled,
        "next_run_at": schedule.next_run_at.isoformat() if schedule.next_run_at else None,
    }


# --------------------------------------------------------------------------- the tick: due runs


def rotation_plan(schedule, *, sequence):
    """What run number `sequence` (0-based) makes: one look, pose and format each
    taken in turn, and one caption template per image, continuing where the
    previous run's images left off."""
    pick = lambda items: items[sequence % len(items)] if items else None  # noqa: E731
    count = schedule.images_per_run
    templates = schedule.caption_templates
    return {
        "look": pick(schedule.looks),
        "pose": pick(schedule.poses),
        "format": pick(schedule.formats),
        "templates": [templates[(sequence * count + index) % len(templates)] for index in range(count)],
    }


def schedule_due_times(schedule, *, now):
    """(every due time up to `now` from next_run_at, oldest first; the next one after now).
    Past timing.SEARCH_LIMIT due times the oldest are not listed."""
    due, current = [], schedule.next_run_at
    while current <= now:
        due.append(current)
        current = schedule_next(schedule, after=current)
        if len(due) >= timing.SEARCH_LIMIT:
            due = due[1:]
            current = max(current, schedule_next(schedule, after=now - timedelta(seconds=1)))
    return due, current


def schedule_run_due(*, now=None, limit=TICK_LIMIT):
    """The tick: run every due schedule once. Each schedule row is taken with
    SELECT ... FOR UPDATE SKIP LOCKED in its own transaction, so two ticks (two
    beat processes, or one restarted) never handle one schedule at once; the run
    row is unique per (schedule, due time) and next_run_at moves past now in the
    same transaction, so a due time is handled exactly once.

    Missed runs (due longer than PUBLISHING_MISSED_GRACE_SECONDS ago: beat was
    down) follow the schedule's policy: "skip" records them as one skipped run;
    "catch_up_once" makes one run for them (for the latest). A due time within
    the grace always runs, and stands for any missed before it. Returns the runs made."""
    now = now or clock.now()
    ids = list(
        Schedule.objects.unscoped()
        .filter(enabled=True, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:limit]
    )
    runs = []
    for schedule_id in ids:
        try:
            run = _schedule_run(schedule_id=schedule_id, now=now)
        except Exception:
            log.exception("Schedule %s: its due run failed", schedule_id)
            continue
        if run is not None:
            runs.append(run)
    return runs


@transaction.atomic
def _schedule_run(*, schedule_id, now):
    schedule = (
        Schedule.objects.unscoped()
        .select_for_update(skip_locked=True)
        .filter(pk=schedule_id, enabled=True, next_run_at__lte=now)
        .first()
    )
    if schedule is None:  # another tick holds it, or has just run it
        return None
    due, following = schedule_due_times(schedule, now=now)
    grace = timedelta(seconds=setting("PUBLISHING_MISSED_GRACE_SECONDS"))
    latest = due[-1]
    on_time = now - latest <= grace
    skip = not on_time and schedule.missed_policy == Schedule.MissedPolicy.SKIP
    run = ScheduleRun(
        brand_id=schedule.brand_id,
        schedule=schedule,
        due_at=latest,
        started_at=now,
        missed=len(due) - 1 if on_time else len(due),
        status=ScheduleRun.Status.SKIPPED if skip else ScheduleRun.Status.SUBMITTED,
    )
    schedule.next_run_at = following
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:  # recorded before (a tick whose update was lost): move on only
        schedule.save(update_fields=["next_run_at", "updated_at"])
        return None
    if not skip:
        _run_campaign_submit(schedule=schedule, run=run)
    run.save()
    schedule.save(update_fields=["next_run_at", "runs_made", "updated_at"])
    audit_record(
        actor=None,
        brand=schedule.brand,
        action=f"schedule.run_{run.status}",
        target=run,
        after={
            "schedule": schedule.pk,
            "due_at": run.due_at.isoformat(),
            "missed": run.missed,
            "campaign": run.campaign_id,
            "plan": run.plan,
            "error": run.error,
            "next_run_at": following.isoformat(),
        },
    )
    return run


def _run_campaign_submit(*, schedule, run):
    """The run's campaign, by the schedule's user; a refusal (quota, role, a look
    that no longer applies) fails the run, in words, and the schedule carries on."""
    sequence = schedule.runs_made
    plan = rotation_plan(schedule, sequence=sequence)
    run.sequence, run.plan = sequence, plan
    actor = schedule.created_by
    if actor is None:
        run.status, run.error = ScheduleRun.Status.FAILED, "The user this schedule acts as no longer exists."
        return
    persona = schedule.persona
    items = LibraryItem.objects.for_brand(schedule.brand).in_bulk([i for i in (plan["look"], plan["pose"]) if i])
    zone = timing.zone_get(schedule.timezone)
    try:
        with transaction.atomic():
            campaign = campaign_submit(
                actor=actor,
                brand=schedule.brand,
                name=f"{schedule.name} · {run.due_at.astimezone(zone):%Y-%m-%d %H:%M}"[:120],
                brief=f"Made by schedule “{schedule.name}” (run {sequence + 1}).",
                versions=[persona.current_version],
                formats=[plan["format"]],
                looks=[items[plan["look"]]] if plan["look"] in items else [],
                poses=[items[plan["pose"]]] if plan["pose"] in items else [],
                variants=schedule.images_per_run,
                # Each run its own noise: a recurring look, pose and format makes new pictures.
                first_variant=1 + (sequence * schedule.images_per_run) % FIRST_VARIANT_MAX,
                idempotency_key=f"schedule-{schedule.pk}-{run.due_at:%Y%m%dT%H%M%SZ}",
            )
    except (ValidationError, PermissionDenied) as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
        run.status, run.error = ScheduleRun.Status.FAILED, " ".join(messages)[:ERROR_MAX]
        return
    run.campaign = campaign
    schedule.runs_made = sequence + 1


# --------------------------------------------------------------------------- a run's images into review


def schedule_campaign_completed(event):
    """Handler of campaign.completed: a schedule's campaign sends its images to review."""
    campaign_id = event.payload.get("campaign_id")
    run_id = ScheduleRun.objects.unscoped().filter(campaign_id=campaign_id).values_list("pk", flat=True).first()
    if run_id is not None:
        schedule_run_review_submit(run_id=run_id)


def schedule_run_review_submit(*, run_id):
    """Submit the run's finished images for review as the schedule's user and keep
    each image's caption draft. Once per run (under its row lock); returns the
    per-image results (approvals.services.ItemResult)."""
    with transaction.atomic():
        run = (
            ScheduleRun.objects.unscoped()
            .select_for_update(of=("self",))
            .select_related("schedule__persona", "brand")
            .get(pk=run_id)
        )
        if run.submitted_for_review_at is not None or run.campaign_id is None:
            return []
        brand, schedule = run.brand, run.schedule
        job_ids = list(
            CampaignItem.objects.for_brand(brand)
            .filter(campaign_id=run.campaign_id)
            .order_by("pk")
            .values_list("job_id", flat=True)
        )
        assets = {asset.job_id: asset for asset in Asset.objects.for_brand(brand).filter(job_id__in=job_ids)}
        _captions_draft(run=run, schedule=schedule, job_ids=job_ids, assets=assets)
        results = []
        asset_ids = [assets[job_id].pk for job_id in job_ids if job_id in assets]
        try:
            if schedule.created_by is None:
                raise PermissionDenied("The user this schedule acts as no longer exists.")
            results = reviews_submit(actor=schedule.created_by, brand=brand, asset_ids=asset_ids)
        except PermissionDenied as exc:
            run.error = f"Its images were not submitted for review: {exc}"[:ERROR_MAX]
        refused = [result for result in results if not result.ok and result.code != "already_submitted"]
        if refused:
            run.error = " ".join(f"Asset {r.asset_id}: {r.message}" for r in refused)[:ERROR_MAX]
        run.submitted_for_review_at = clock.now()
        run.status = ScheduleRun.Status.IN_REVIEW if not run.error else ScheduleRun.Status.FAILED
        run.save(update_fields=["submitted_for_review_at", "status", "error"])
        audit_record(
            actor=None,
            brand=brand,
            action="schedule.run_in_review",
            target=run,
            after={"assets": asset_ids, "error": run.error},
        )
    return results


def _captions_draft(*, run, schedule, job_ids, assets):
    templates = run.plan.get("templates") or schedule.caption_templates
    names = dict(
        LibraryItem.objects.for_brand(run.brand)
        .filter(pk__in=[run.plan.get("look"), run.plan.get("pose")])
        .values_list("pk", "name")
    )
    zone = timing.zone_get(schedule.timezone)
    persona = schedule.persona
    for index, job_id in enumerate(job_ids):
        asset = assets.get(job_id)
        if asset is None:
            continue
        template = templates[index % len(templates)]
        text = caption_render(
            template,
            persona=persona.name,
            handle=f"@{persona.handle}",
            look=names.get(run.plan.get("look")),
            pose=names.get(run.plan.get("pose")),
            format=asset.output_format,
            date=run.due_at.astimezone(zone).date().isoformat(),
        )
        CaptionDraft.objects.for_brand(run.brand).get_or_create(
            asset=asset, defaults={"brand_id": run.brand_id, "run": run, "template": template, "text": text}
        )


# --------------------------------------------------------------------------- posts


def _approval_refusal(*, review, asset):
    """Why the asset may not be posted, in words, or "" (it is approved)."""
    lapse = ApprovalLapse.objects.for_brand(asset.brand).filter(asset=asset).first()
    if lapse is not None or (review is not None and review.state == "lapsed"):
        when = f" on {lapse.lapsed_at:%Y-%m-%d %H:%M} UTC" if lapse else ""
        return f"Its approval lapsed{when}: its post's time passed unpublished. It cannot be posted."
    if review is None:
        return "This image has not been approved: it was never submitted for review."
    if review.state not in RELEASED_STATES:
        return f"This image is {review.get_state_display().lower()}, not approved."
    if review.content_sha256 != asset.sha256:
        return "This image changed since it was approved; it needs a review of its own."
    return ""


def _review_locked(*, brand, asset):
    return (
        AssetReview.objects.for_brand(brand)
        .select_for_update(of=("self",))
        .select_related("workflow")
        .filter(asset_id=asset.pk)
        .first()
    )


def _media(asset):
    """The approved master's bytes (asset_file_open); None while it is not released."""
    opened, released = asset_file_open(asset=asset, kind="master")
    if not released:
        return None
    if isinstance(opened, bytes | bytearray):
        return bytes(opened)
    with opened:
        return opened.read()


def _caption_clean(caption):
    caption = (caption or "").strip()
    if len(caption) > CAPTION_MAX:
        raise ValidationError({"caption": f"A caption has at most {CAPTION_MAX} characters."})
    return caption


def post_create(*, actor, brand, asset, channel, publish_at, caption=None):
    """Schedule an approved asset on a channel at `publish_at` (aware, in the
    future). The caption defaults to the asset's caption draft. Refused with
    ValidationError naming the field: an asset that is not approved (or whose
    approval lapsed), a caption or file that breaks the channel's disclosure
    policy, a disabled channel, a time in the past, a second live post of the
    asset on the channel. The review moves approved -> scheduled. Creators and owners."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if asset.brand_id != brand.pk:
        raise ValidationError({"asset": "No such image in this brand."})
    if channel.brand_id != brand.pk:
        raise ValidationError({"channel": "No such channel in this brand."})
    if not channel.enabled:
        raise ValidationError({"channel": f"{channel.name} is disabled."})
    now = clock.now()
    if publish_at is None or publish_at.tzinfo is None or publish_at <= now:
        raise ValidationError({"publish_at": "Choose a time in the future."})
    if caption is None:
        draft = CaptionDraft.objects.for_brand(brand).filter(asset=asset).first()
        caption = draft.text if draft else ""
    caption = _caption_clean(caption)
    if problems := caption_problems(channel=channel, caption=caption):
        raise ValidationError({"caption": problems})
    media = _media(asset) if asset.released else None
    if media is not None and (problems := file_problems(channel=channel, brand=brand, media=media, mime="image/png")):
        raise ValidationError({"asset": problems})
    with transaction.atomic():
        review = _review_locked(brand=brand, asset=asset)
        if refusal := _approval_refusal(review=review, asset=asset):
            raise ValidationError({"asset": refusal})
        if review.state == ReviewState.APPROVED:
            review_publishing_move(review=review, transition="schedule")
        try:
            with transaction.atomic():
                post = Post.objects.create(
                    brand=brand,
                    asset=asset,
                    channel=channel,
                    caption=caption,
                    publish_at=publish_at,
                    created_by=actor,
                )
        except IntegrityError:
            raise ValidationError({"channel": f"This image is already waiting to go out on {channel.name}."}) from None
        audit_record(actor=actor, brand=brand, action="post.scheduled", target=post, after=_post_summary(post))
        event_emit(name="post.scheduled", brand=brand, payload=_post_payload(post))
    return post


def post_reschedule(*, actor, brand, post, publish_at, caption=None):
    """Move a scheduled (or failed) post to another time (the calendar's drag),
    optionally with a new caption; attempts start again. A post whose time passed
    unpublished longer than PUBLISHING_LAPSE_AFTER_SECONDS ago lapses here (its
    approval with it) and is refused. Creators and owners."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if post.brand_id != brand.pk:
        raise ValidationError({"post": "No such post in this brand."})
    now = clock.now()
    if post.state in (State.SCHEDULED, State.FAILED) and _lapse_due(post, now):
        posts_lapse(post_ids=[post.pk], now=now)
        raise ValidationError({"publish_at": "This post's time passed unpublished: its approval lapsed."})
    if publish_at is None or publish_at.tzinfo is None or publish_at <= now:
        raise ValidationError({"publish_at": "Choose a time in the future."})
    with transaction.atomic():
        review = _review_locked(brand=brand, asset=post.asset)
        locked = Post.objects.for_brand(brand).select_for_update().select_related("channel", "asset").get(pk=post.pk)
        if locked.state not in (State.SCHEDULED, State.FAILED):
            raise ValidationError({"post": f"A {locked.get_state_display().lower()} post cannot be moved."})
        before = _post_summary(locked)
        if caption is not None:
            locked.caption = _caption_clean(caption)
        if problems := caption_problems(channel=locked.channel, caption=locked.caption):
            raise ValidationError({"caption": problems})
        if refusal := _approval_refusal(review=review, asset=locked.asset):
            raise ValidationError({"asset": refusal})
        locked.publish_at = publish_at
        locked.state = State.SCHEDULED
        locked.failures = 0
        locked.next_attempt_at = None
        locked.blocked_reason = locked.last_error = ""
        locked.save()
        audit_record(
            actor=actor,
            brand=brand,
            action="post.rescheduled",
            target=locked,
            before=before,
            after=_post_summary(locked),
        )
        event_emit(name="post.rescheduled", brand=brand, payload=_post_payload(locked))
    return locked


def post_cancel(*, actor, brand, post):
    """Cancel a scheduled (or failed) post; the review goes back to approved when
    no other post of the asset is waiting. Creators and owners."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if post.brand_id != brand.pk:
        raise ValidationError({"post": "No such post in this brand."})
    with transaction.atomic():
        # Locks in one order everywhere: the review, then its posts.
        review = _review_locked(brand=brand, asset=post.asset)
        locked = Post.objects.for_brand(brand).select_for_update().select_related("asset").get(pk=post.pk)
        if locked.state not in (State.SCHEDULED, State.FAILED):
            raise ValidationError({"post": f"A {locked.get_state_display().lower()} post cannot be cancelled."})
        before = _post_summary(locked)
        locked.state = State.CANCELLED
        locked.next_attempt_at = None
        locked.save()
        others = Post.objects.for_brand(brand).filter(asset=locked.asset, state__in=Post.ACTIVE)
        if review is not None and review.state == ReviewState.SCHEDULED and not others.exists():
            review_publishing_move(review=review, transition="unschedule")
        audit_record(
            actor=actor, brand=brand, action="post.cancelled", target=locked, before=before, after=_post_summary(locked)
        )
        event_emit(name="post.cancelled", brand=brand, payload=_post_payload(locked))
    return locked


def _post_summary(post):
    return {
        "asset": post.asset_id,
        "channel": post.channel_id,
        "caption": post.caption,
        "publish_at": post.publish_at.isoformat(),
        "state": post.state,
    }


def _post_payload(post):
    return {
        "post_id": post.pk,
        "asset_id": post.asset_id,
        "channel_id": post.channel_id,
        "state": post.state,
        "publish_at": post.publish_at.isoformat(),
        "published_at": post.published_at.isoformat() if post.published_at else None,
        "external_id": post.external_id,
        "external_url": post.external_url,
        "reason": post.blocked_reason or post.last_error,
    }


# --------------------------------------------------------------------------- publishing


def retry_delay(failures):
    """Seconds to wait after the `failures`-th failed attempt of a post."""
    base, cap = setting("PUBLISHING_RETRY_BASE_SECONDS"), setting("PUBLISHING_RETRY_MAX_SECONDS")
    return min(cap, base * 4 ** (failures - 1))


def _refusal_words(result):
    return f"The channel answered HTTP {result.status_code}." if result.status_code else "The channel refused the post."


def _lapse_due(post, now):
    return post.publish_at + timedelta(seconds=setting("PUBLISHING_LAPSE_AFTER_SECONDS")) < now


def posts_send(post_ids, *, countdown=None):
    """Ask a worker to publish each post; an unreachable broker is logged (the tick sends them)."""
    for post_id in post_ids:
        try:
            celery_app.send_task(PUBLISH_TASK, args=[post_id], countdown=countdown, retry=False)
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the tick sends it again
            log.warning("Posts wait for the next tick (task queue unreachable: %s)", exc)
            return False
    return True


def _due_filter(now):
    waiting = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return Q(Q(state=State.SCHEDULED, publish_at__lte=now) & waiting) | Q(state=State.PUBLISHING, locked_until__lt=now)


def posts_due_send(*, now=None, limit=500):
    """Send every post due to publish, and every attempt whose worker was lost (the tick)."""
    now = now or clock.now()
    due = list(
        Post.objects.unscoped().filter(_due_filter(now)).order_by("publish_at").values_list("pk", flat=True)[:limit]
    )
    posts_send(due)
    return len(due)


def post_publish(*, post_id):
    """One attempt at publishing a post (the task's body), if it is due and no one
    else holds it: a conditional UPDATE claims it (state publishing, a lease), so
    a message delivered twice publishes once; the idempotency key sent to the
    channel covers a worker lost after the channel accepted it.

    Before calling the connector: a post past its lapse time lapses; one whose
    asset is not approved, or whose caption or file breaks the channel's
    disclosure policy, fails with that reason (blocked_reason) and is not retried;
    approved files not made yet are waited for like a retryable failure.
    Returns the post's state afterwards, or None when there was nothing to do."""
    now = clock.now()
    claimed = (
        Post.objects.unscoped()
        .filter(_due_filter(now), pk=post_id)
        .update(state=State.PUBLISHING, attempts=F("attempts") + 1, locked_until=now + ATTEMPT_LEASE)
    )
    if not claimed:
        return None
    post = (
        Post.objects.unscoped().select_related("channel__webhook_endpoint", "asset__persona", "brand").get(pk=post_id)
    )
    if _lapse_due(post, now):
        Post.objects.unscoped().filter(pk=post.pk, state=State.PUBLISHING, attempts=post.attempts).update(
            state=State.SCHEDULED, locked_until=None
        )
        posts_lapse(post_ids=[post.pk], now=now)
        return State.LAPSED
    attempt = PublishAttempt.objects.create(brand_id=post.brand_id, post=post, number=post.attempts, started_at=now)
    result, blocked = _attempt(post)
    return _finish(post, attempt=attempt, result=result, blocked=blocked)


def _attempt(post):
    """(PublishResult, blocked reason or "")."""
    asset, channel, brand = post.asset, post.channel, post.brand
    review = AssetReview.objects.for_brand(brand).filter(asset=asset).first()
    if refusal := _approval_refusal(review=review, asset=asset):
        return PublishResult(ok=False, error=refusal), refusal
    try:
        media = _media(asset)
    except FileNotFoundError as exc:
        return PublishResult(ok=False, retryable=True, error=f"The approved file is missing: {exc}"), ""
    if media is None:
        return PublishResult(ok=False, retryable=True, error="The approved files are not made yet."), ""
    problems = caption_problems(channel=channel, caption=post.caption) + file_problems(
        channel=channel, brand=brand, media=media, mime="image/png"
    )
    if problems:
        return PublishResult(ok=False, error=" ".join(problems)), " ".join(problems)
    request = PublishRequest(
        post_id=post.pk,
        idempotency_key=str(post.idempotency_key),
        brand=brand.slug,
        channel=channel.name,
        persona=asset.persona.handle,
        asset_id=asset.pk,
        caption=post.caption,
        publish_at=post.publish_at.isoformat(),
        media=media,
        mime="image/png",
        file_name=asset.released_image.name.rsplit("/", 1)[-1],
        content_sha256=hashlib.sha256(media).hexdigest(),
    )
    try:
        return connector_for(channel).publish(request), ""
    except Exception as exc:  # noqa: BLE001 - a connector's bug is one failed, retried attempt
        log.exception("Post %s: connector %s raised", post.pk, channel.kind)
        return PublishResult(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}"), ""


def _finish(post, *, attempt, result, blocked):
    now = clock.now()
    attempt.finished_at, attempt.ok, attempt.retryable = now, result.ok, result.retryable
    error = "" if result.ok else (result.error or _refusal_words(result))
    attempt.status_code, attempt.response, attempt.error = result.status_code, result.response, error[:ERROR_MAX]
    attempt.save()
    failures = post.failures + (0 if result.ok else 1)
    retry = not result.ok and result.retryable and failures < setting("PUBLISHING_MAX_ATTEMPTS")
    delay = retry_delay(failures) if retry else None
    if result.ok:
        state = State.PUBLISHED
    else:
        state = State.SCHEDULED if retry else State.FAILED
    with transaction.atomic():
        review = _review_locked(brand=post.brand, asset=post.asset) if result.ok else None
        changed = (
            Post.objects.unscoped()
            .filter(pk=post.pk, state=State.PUBLISHING, attempts=post.attempts)
            .update(
                state=state,
                failures=failures,
                locked_until=None,
                next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
                published_at=now if result.ok else None,
                external_id=result.external_id[:200],
                external_url=result.external_url[:2000],
                blocked_reason=blocked,
                last_error=error[:ERROR_MAX],
            )
        )
        if not changed:  # the lease ran out and another attempt took the post
            return None
        post.refresh_from_db()
        if review is not None and review.state == ReviewState.SCHEDULED:
            review_publishing_move(review=review, transition="publish")
        if state != State.SCHEDULED:
            action = {State.PUBLISHED: "post.published", State.FAILED: "post.failed"}[state]
            audit_record(
                actor=None,
                brand=post.brand,
                action=action,
                target=post,
                after={**_post_summary(post), "attempt": attempt.number, "reason": blocked or error},
            )
            event_emit(name=action, brand=post.brand, payload=_post_payload(post))
    if delay is not None and delay <= COUNTDOWN_MAX_SECONDS:
        posts_send([post.pk], countdown=delay + 1)
    return state


# --------------------------------------------------------------------------- lapse


def posts_lapse_sweep(*, now=None):
    """Lapse every post still unpublished PUBLISHING_LAPSE_AFTER_SECONDS after its
    publish_at (the tick). Returns how many lapsed."""
    now = now or clock.now()
    cutoff = now - timedelta(seconds=setting("PUBLISHING_LAPSE_AFTER_SECONDS"))
    ids = list(
        Post.objects.unscoped()
        .filter(state__in=[State.SCHEDULED, State.FAILED], publish_at__lt=cutoff)
        .values_list("pk", flat=True)
    )
    return posts_lapse(post_ids=ids, now=now)


def posts_lapse(*, post_ids, now):
    lapsed = 0
    for post_id in post_ids:
        try:
            lapsed += _post_lapse(post_id=post_id, now=now)
        except Exception:
            log.exception("Post %s: lapsing it failed", post_id)
    return lapsed


@transaction.atomic
def _post_lapse(*, post_id, now):
    """The post lapses; unless the asset was published elsewhere, so does its
    approval: recorded (ApprovalLapse), the review moved to lapsed (once
    approvals has that transition), its other waiting posts lapsed too, and its
    approved files withdrawn (content.asset_release_withdraw)."""
    seen = Post.objects.unscoped().select_related("brand", "asset").filter(pk=post_id).first()
    if seen is None:
        return 0
    brand, asset = seen.brand, seen.asset
    review = _review_locked(brand=brand, asset=asset)
    post = Post.objects.for_brand(brand).select_for_update().filter(pk=post_id).first()
    if post is None or post.state not in (State.SCHEDULED, State.FAILED) or not _lapse_due(post, now):
        return 0
    before = _post_summary(post)
    published = review is not None and review.state == ReviewState.PUBLISHED
    siblings = []
    if not published:
        siblings = list(
            Post.objects.for_brand(brand)
            .select_for_update()
            .filter(asset=asset, state__in=[State.SCHEDULED, State.FAILED])
            .exclude(pk=post.pk)
        )
    reason = f"Its time ({post.publish_at:%Y-%m-%d %H:%M} UTC) passed unpublished."
    for each in [post, *siblings]:
        each.state, each.next_attempt_at = State.LAPSED, None
        each.blocked_reason = reason if each is post else "Another post of this image lapsed, and its approval with it."
        each.save(update_fields=["state", "next_attempt_at", "blocked_reason", "updated_at"])
        event_emit(name="post.lapsed", brand=brand, payload=_post_payload(each))
    audit_record(actor=None, brand=brand, action="post.lapsed", target=post, before=before, after=_post_summary(post))
    if not published:
        lapse, _new = ApprovalLapse.objects.for_brand(brand).get_or_create(
            asset=asset, defaults={"brand": brand, "post": post, "lapsed_at": now}
        )
        if review is not None and review.state in (ReviewState.APPROVED, ReviewState.SCHEDULED):
            review_publishing_move(review=review, transition="lapse")
        asset_release_withdraw(asset=asset, reason=f"approval lapsed: post {post.pk} unpublished at its time")
        audit_record(
            actor=None,
            brand=brand,
            action="approval.lapsed",
            target=lapse,
            after={"asset": asset.pk, "post": post.pk, "review": review.pk if review else None},
        )
    return 1 + len(siblings)


def tick():
    """Beat's minute: due schedule runs, due posts, lapsed posts."""
    now = clock.now()
    runs = schedule_run_due(now=now)
    lapsed = posts_lapse_sweep(now=now)
    sent = posts_due_send(now=now)
    return {"runs": len(runs), "posts_sent": sent, "posts_lapsed": lapsed}
