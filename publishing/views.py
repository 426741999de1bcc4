"""Dashboard pages of publishing: the calendar (month and week, drag a post to
move it), posts (create from an approved image, detail with the publish log,
move, cancel), channels with their disclosure policy (owners) and schedules
(creators and owners). Every member reads; outsiders get 404.

Times are shown and typed in the dashboard's time zone (settings.TIME_ZONE,
Django's current time zone); "now" is publishing's clock (publishing.clock),
so the pages agree with the services about what is past."""

import calendar as calendar_lib
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from approvals.selectors import review_for_asset
from avatars.selectors import library_items_for_brand, personas_for_brand
from brands.models import CREATE_ROLES, Role
from brands.selectors import brand_access_get
from common.forms import service_errors_add
from content.selectors import asset_get
from webhooks.models import WebhookEndpoint

from . import clock
from .forms import ChannelEditForm, ChannelForm, PostForm, RescheduleForm, ScheduleForm, schedule_initial
from .models import Post, Schedule
from .selectors import (
    caption_draft_for,
    channel_get,
    channels_for_brand,
    post_get,
    post_log,
    posts_in_range,
    schedule_get,
    schedule_next_runs,
    schedule_runs,
    schedules_for_brand,
)
from .services import (
    channel_create,
    channel_update,
    post_cancel,
    post_create,
    post_reschedule,
    schedule_create,
    schedule_delete,
    schedule_update,
)

OWNERS = {Role.OWNER}
State = Post.State
CALENDAR_STATES = (State.SCHEDULED, State.PUBLISHING, State.PUBLISHED, State.FAILED, State.LAPSED)
MOVABLE = (State.SCHEDULED, State.FAILED)
# Next runs looked at per schedule for the visible range; a cell lists a few.
RUNS_LOOKED_AT = 200
RUNS_PER_CELL = 3
LOCAL_INPUT = "%Y-%m-%dT%H:%M:%S"


def _local(instant):
    return timezone.localtime(instant)


def _date_param(value, default):
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return default


def _back(request, default):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(default)


def _words(exc):
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else (str(exc) or "Not allowed.")


# --------------------------------------------------------------------------- calendar


@login_required
@require_http_methods(["GET"])
def calendar_view(request, brand_slug):
    """The brand's posts and the schedules' next runs, a month (default) or a week
    (?view=week&date=YYYY-MM-DD) at a time; creators drag a scheduled post to
    another day or hour, or type its new time into the form beside it."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    brand = access.brand
    now = _local(clock.now())
    view = "week" if request.GET.get("view") == "week" else "month"
    shown = _date_param(request.GET.get("date"), now.date())
    zone = timezone.get_current_timezone()
    if view == "month":
        first = shown.replace(day=1)
        last = first.replace(day=calendar_lib.monthrange(first.year, first.month)[1])
        grid_start = first - timedelta(days=first.weekday())
        grid_end = last + timedelta(days=6 - last.weekday())
        previous, following = first - timedelta(days=1), last + timedelta(days=1)
        title = first.strftime("%B %Y")
    else:
        grid_start = shown - timedelta(days=shown.weekday())
        grid_end = grid_start + timedelta(days=6)
        previous, following = grid_start - timedelta(days=7), grid_start + timedelta(days=7)
        title = f"Week of {grid_start:%d %B %Y}"
    start = datetime.combine(grid_start, time.min, tzinfo=zone)
    end = datetime.combine(grid_end + timedelta(days=1), time.min, tzinfo=zone)
    can_change = access.role in CREATE_ROLES

    by_day, by_slot = defaultdict(list), defaultdict(list)
    for post in posts_in_range(brand=brand, start=start, end=end, states=CALENDAR_STATES):
        local = _local(post.publish_at)
        entry = {"post": post, "local": local, "value": local.strftime(LOCAL_INPUT)}
        entry["movable"] = can_change and post.state in MOVABLE
        by_day[local.date()].append(entry)
        by_slot[(local.date(), local.hour)].append(entry)
    runs_by_day, runs_by_slot = defaultdict(list), defaultdict(list)
    for schedule in schedules_for_brand(brand=brand).filter(enabled=True):
        for run in schedule_next_runs(schedule=schedule, count=RUNS_LOOKED_AT):
            if run >= end:
                break
            if run >= start:
                local = _local(run)
                runs_by_day[local.date()].append({"schedule": schedule, "local": local})
                runs_by_slot[(local.date(), local.hour)].append({"schedule": schedule, "local": local})

    days = [grid_start + timedelta(days=n) for n in range((grid_end - grid_start).days + 1)]

    def cell(day, posts, runs):
        return {
            "date": day,
            "iso": day.isoformat(),
            "today": day == now.date(),
            "past": day < now.date(),
            "in_month": view == "week" or day.month == shown.month,
            "posts": posts,
            "runs": runs[:RUNS_PER_CELL],
            "more_runs": max(0, len(runs) - RUNS_PER_CELL),
        }

    context = {
        "brand": brand,
        "role": access.role,
        "view": view,
        "title": title,
        "zone": zone,
        "now": now,
        "shown": shown,
        "previous": previous.isoformat(),
        "following": following.isoformat(),
        "today": now.date().isoformat(),
        "can_change": can_change,
        "weekdays": [calendar_lib.day_abbr[n] for n in range(7)],
    }
    if view == "month":
        cells = [cell(day, by_day[day], runs_by_day[day]) for day in days]
        context["weeks"] = [cells[n : n + 7] for n in range(0, len(cells), 7)]
    else:
        context["days"] = [cell(day, [], []) for day in days]
        context["hours"] = [
            {
                "hour": hour,
                "label": f"{hour:02d}:00",
                "slots": [
                    {
                        **cell(day, by_slot[(day, hour)], runs_by_slot[(day, hour)]),
                        "slot": f"{day.isoformat()}T{hour:02d}",
                        "past": (day, hour) < (now.date(), now.hour),
                    }
                    for day in days
                ],
            }
            for hour in range(24)
        ]
    return render(request, "publishing/calendar.html", context)


# --------------------------------------------------------------------------- posts


@login_required
@require_http_methods(["GET", "POST"])
def post_new(request, brand_slug):
    """Schedule an approved image (?asset=<id>) on a channel at a time, with its
    caption (the schedule's draft to start from). Creators and owners."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    brand = access.brand
    asset_id = request.POST.get("asset") if request.method == "POST" else request.GET.get("asset")
    try:
        asset = asset_get(brand=brand, asset_id=int(asset_id))
    except (TypeError, ValueError):
        raise Http404("No such asset") from None
    channels = channels_for_brand(brand=brand).filter(enabled=True)
    now = _local(clock.now())
    initial = {
        "caption": caption_draft_for(brand=brand, asset=asset),
        "publish_at": (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).replace(tzinfo=None),
    }
    form = PostForm(request.POST if request.method == "POST" else None, channels=channels, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                post = post_create(
                    actor=request.user,
                    brand=brand,
                    asset=asset,
                    channel=form.cleaned_data["channel"],
                    publish_at=form.cleaned_data["publish_at"],
                    caption=form.cleaned_data["caption"],
                )
            except ValidationError as exc:
                service_errors_add(form, exc)
            else:
                when = _local(post.publish_at)
                messages.success(request, f"Scheduled on {post.channel.name} for {when:%Y-%m-%d %H:%M}.")
                return redirect("post-detail", brand_slug=brand.slug, post_id=post.pk)
        status = 400
    return render(
        request,
        "publishing/post_new.html",
        {
            "brand": brand,
            "role": access.role,
            "asset": asset,
            "review": review_for_asset(brand=brand, asset=asset),
            "channels": channels,
            "form": form,
            "zone": timezone.get_current_timezone(),
            "now": now,
        },
        status=status,
    )


def _post_page(request, access, post, *, form=None, status=200):
    can_change = access.role in CREATE_ROLES and post.state in MOVABLE
    if can_change and form is None:
        form = RescheduleForm(initial={"publish_at": _local(post.publish_at).replace(tzinfo=None)})
    return render(
        request,
        "publishing/post_detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "post": post,
            "local": _local(post.publish_at),
            "log": post_log(brand=access.brand, post=post),
            "form": form if can_change else None,
            "can_change": can_change,
            "zone": timezone.get_current_timezone(),
        },
        status=status,
    )


def _post_or_404(brand, post_id):
    post = post_get(brand=brand, post_id=post_id)
    if post is None:
        raise Http404("No such post")
    return post


@login_required
@require_http_methods(["GET"])
def post_detail(request, brand_slug, post_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    return _post_page(request, access, _post_or_404(access.brand, post_id))


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def post_move(request, brand_slug, post_id):
    """Move a post to another time: the calendar's drag (fetch, JSON answer) or
    the small form beside each post (redirect back with a message). The service
    re-checks the approval: a post whose time passed long ago lapses here."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    brand = access.brand
    post = _post_or_404(brand, post_id)
    form = RescheduleForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Give the new time as a date and time, e.g. 2026-03-02T09:30."
    else:
        try:
            post = post_reschedule(
                actor=request.user, brand=brand, post=post, publish_at=form.cleaned_data["publish_at"]
            )
        except (ValidationError, PermissionDenied) as exc:
            error = _words(exc)
    if _wants_json(request):
        if error:
            return JsonResponse({"ok": False, "error": error}, status=400)
        local = _local(post.publish_at)
        return JsonResponse(
            {"ok": True, "publish_at": local.strftime(LOCAL_INPUT), "message": f"Moved to {local:%Y-%m-%d %H:%M}."}
        )
    if error:
        messages.error(request, f"Post {post.pk} was not moved: {error}")
    else:
        messages.success(request, f"Moved post {post.pk} to {_local(post.publish_at):%Y-%m-%d %H:%M}.")
    return _back(request, reverse("post-detail", kwargs={"brand_slug": brand.slug, "post_id": post.pk}))


@login_required
@require_POST
def post_cancel_view(request, brand_slug, post_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    post = _post_or_404(access.brand, post_id)
    try:
        post_cancel(actor=request.user, brand=access.brand, post=post)
    except ValidationError as exc:
        messages.error(request, _words(exc))
    else:
        messages.success(request, f"Cancelled post {post.pk}; it will not be published.")
    return redirect("post-detail", brand_slug=access.brand.slug, post_id=post.pk)


# --------------------------------------------------------------------------- channels


def _errors_add(form, exc, renames):
    if hasattr(exc, "error_dict"):
        exc = ValidationError({renames.get(field, field): errors for field, errors in exc.error_dict.items()})
    service_errors_add(form, exc)


CHANNEL_RENAMES = {"config": "prefix"}


def _endpoints(brand):
    # A queryset for the form's choices (the webhooks selector answers a list with counts).
    return WebhookEndpoint.objects.filter(brand=brand).order_by("url", "pk")


@login_required
@require_http_methods(["GET", "POST"])
def channel_list(request, brand_slug):
    """The brand's channels and their disclosure policy; owners add one."""
    posted = request.method == "POST"
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS if posted else None)
    brand = access.brand
    endpoints = _endpoints(brand)
    form = None
    if access.role == Role.OWNER:
        form = ChannelForm(request.POST if posted else None, endpoints=endpoints)
    status = 200
    if posted:
        if form.is_valid():
            try:
                channel = channel_create(
                    actor=request.user, brand=brand, kind=form.cleaned_data["kind"], **form.service_values()
                )
            except ValidationError as exc:
                _errors_add(form, exc, CHANNEL_RENAMES)
            else:
                messages.success(request, f"Added the channel {channel.name}.")
                return redirect("channel-list", brand_slug=brand.slug)
        status = 400
    return render(
        request,
        "publishing/channels.html",
        {"brand": brand, "role": access.role, "channels": channels_for_brand(brand=brand), "form": form},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request, brand_slug, channel_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    brand = access.brand
    channel = channel_get(brand=brand, channel_id=channel_id)
    if channel is None:
        raise Http404("No such channel")
    initial = {
        "name": channel.name,
        "webhook_endpoint": channel.webhook_endpoint_id,
        "prefix": channel.config.get("prefix", ""),
        "caption_labels": "\n".join(channel.caption_labels),
        "require_c2pa": channel.require_c2pa,
        "require_digital_source_type": channel.require_digital_source_type,
        "enabled": channel.enabled,
    }
    endpoints = _endpoints(brand)
    posted = request.method == "POST"
    form = ChannelEditForm(request.POST if posted else None, endpoints=endpoints, initial=initial)
    status = 200
    if posted:
        if form.is_valid():
            try:
                channel_update(actor=request.user, brand=brand, channel=channel, **form.service_values())
            except ValidationError as exc:
                _errors_add(form, exc, CHANNEL_RENAMES)
            else:
                messages.success(request, f"Saved the channel {form.cleaned_data['name']}.")
                return redirect("channel-list", brand_slug=brand.slug)
        status = 400
    return render(
        request,
        "publishing/channel_edit.html",
        {"brand": brand, "role": access.role, "channel": channel, "form": form},
        status=status,
    )


# --------------------------------------------------------------------------- schedules

SCHEDULE_RENAMES = {"interval_seconds": "interval_minutes"}
NEXT_RUNS_LISTED = 3


def _schedule_form(request, brand, *, editing=False, initial=None):
    return ScheduleForm(
        request.POST if request.method == "POST" else None,
        personas=personas_for_brand(brand=brand),
        library_items=list(library_items_for_brand(brand=brand)),
        editing=editing,
        initial=initial,
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_list(request, brand_slug):
    """Schedules per persona with their next runs; creators and owners add one."""
    posted = request.method == "POST"
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES if posted else None)
    brand = access.brand
    form = _schedule_form(request, brand) if access.role in CREATE_ROLES else None
    status = 200
    if posted:
        if form.is_valid():
            try:
                schedule = schedule_create(
                    actor=request.user, brand=brand, persona=form.cleaned_data["persona"], **form.service_values()
                )
            except ValidationError as exc:
                _errors_add(form, exc, SCHEDULE_RENAMES)
            else:
                messages.success(request, f"Created the schedule {schedule.name}.")
                return redirect("schedule-detail", brand_slug=brand.slug, schedule_id=schedule.pk)
        status = 400
    by_persona = defaultdict(list)
    for schedule in schedules_for_brand(brand=brand).order_by("persona__name", "name", "pk"):
        runs = [_local(run) for run in schedule_next_runs(schedule=schedule, count=NEXT_RUNS_LISTED)]
        by_persona[schedule.persona].append({"schedule": schedule, "next_runs": runs})
    return render(
        request,
        "publishing/schedules.html",
        {
            "brand": brand,
            "role": access.role,
            "groups": list(by_persona.items()),
            "form": form,
            "zone": timezone.get_current_timezone(),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_detail(request, brand_slug, schedule_id):
    """A schedule: its next runs, its recent runs and (creators, owners) its settings."""
    posted = request.method == "POST"
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES if posted else None)
    brand = access.brand
    schedule = schedule_get(brand=brand, schedule_id=schedule_id)
    if schedule is None:
        raise Http404("No such schedule")
    form = None
    if access.role in CREATE_ROLES:
        form = _schedule_form(request, brand, editing=True, initial=schedule_initial(schedule))
    status = 200
    if posted:
        if form.is_valid():
            try:
                schedule_update(actor=request.user, brand=brand, schedule=schedule, **form.service_values())
            except ValidationError as exc:
                _errors_add(form, exc, SCHEDULE_RENAMES)
            else:
                messages.success(request, f"Saved the schedule {form.cleaned_data['name']}.")
                return redirect("schedule-detail", brand_slug=brand.slug, schedule_id=schedule.pk)
        status = 400
    return render(
        request,
        "publishing/schedule_detail.html",
        {
            "brand": brand,
            "role": access.role,
            "schedule": schedule,
            "next_runs": [_local(run) for run in schedule_next_runs(schedule=schedule, count=10)],
            "runs": schedule_runs(brand=brand, schedule=schedule, limit=20),
            "form": form,
            "zone": timezone.get_current_timezone(),
            "kinds": Schedule.Kind,
        },
        status=status,
    )


@login_required
@require_POST
def schedule_delete_view(request, brand_slug, schedule_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    schedule = schedule_get(brand=access.brand, schedule_id=schedule_id)
    if schedule is None:
        raise Http404("No such schedule")
    schedule_delete(actor=request.user, brand=access.brand, schedule=schedule)
    messages.success(request, f"Deleted the schedule {schedule.name}; the campaigns it made stay.")
    return redirect("schedule-list", brand_slug=access.brand.slug)
