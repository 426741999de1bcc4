"""Forms of the publishing pages. They only shape input; every rule (approval,
disclosure, roles, cron, templates) is the services' to check.

Dates typed into a datetime-local field are read on the wall clock of the
dashboard's time zone (settings.TIME_ZONE); a schedule's start is read in the
schedule's own zone."""

import re
from datetime import datetime

from django import forms

from avatars.models import LibraryItem
from campaigns.services import MAX_VARIANTS
from content.formats import FORMATS

from . import timing
from .connectors import CONNECTORS
from .models import Schedule

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
LOCAL_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S")


def local_field(**kwargs):
    return forms.DateTimeField(input_formats=LOCAL_FORMATS, widget=LOCAL_WIDGET, **kwargs)


class PostForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=None, empty_label=None)
    caption = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=2200)
    publish_at = local_field(label="Publish at", help_text="On the dashboard's clock (its time zone is shown above).")

    def __init__(self, *args, channels, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = channels


class RescheduleForm(forms.Form):
    publish_at = local_field(label="Move to")


def labels_split(text):
    """Labels typed one per line or separated by commas."""
    return [label.strip() for label in re.split(r"[\n,]", text or "") if label.strip()]


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=80)
    kind = forms.ChoiceField(label="Kind", choices=())
    webhook_endpoint = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Webhook endpoint",
        help_text="Signed webhook channels POST each post to this endpoint of the brand.",
    )
    prefix = forms.CharField(
        max_length=200,
        required=False,
        label="Export folder",
        help_text="File / bucket export channels write under this folder of the storage (default “exports”).",
    )
    caption_labels = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Caption must carry",
        help_text="One label per line or comma-separated, e.g. AI-generated, #virtualinfluencer.",
    )
    require_c2pa = forms.BooleanField(required=False, initial=True, label="Require a valid C2PA manifest in the file")
    require_digital_source_type = forms.BooleanField(
        required=False, initial=True, label="Require IPTC DigitalSourceType “trainedAlgorithmicMedia” in the file"
    )

    def __init__(self, *args, endpoints, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(kind, cls.label or kind) for kind, cls in sorted(CONNECTORS.items())]
        self.fields["webhook_endpoint"].queryset = endpoints

    def service_values(self):
        data = self.cleaned_data
        return {
            "name": data["name"],
            "config": {"prefix": data["prefix"]} if data["prefix"] else {},
            "webhook_endpoint": data["webhook_endpoint"],
            "caption_labels": labels_split(data["caption_labels"]),
            "require_c2pa": data["require_c2pa"],
            "require_digital_source_type": data["require_digital_source_type"],
        }


class ChannelEditForm(ChannelForm):
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["kind"]

    def service_values(self):
        return {**super().service_values(), "enabled": self.cleaned_data["enabled"]}


def zone_choices():
    return [(name, name) for name in sorted(timing._zone_names())]


class ScheduleForm(forms.Form):
    persona = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=Schedule.Kind.choices, widget=forms.RadioSelect, initial=Schedule.Kind.CRON)
    cron = forms.CharField(
        max_length=120,
        required=False,
        label="Cron expression",
        help_text="minute hour day-of-month month day-of-week, on the schedule's wall clock: “0 9 * * 1-5” "
        "is 09:00 on weekdays.",
    )
    interval_minutes = forms.IntegerField(
        required=False, min_value=1, label="Interval (minutes)", help_text="Elapsed time between runs."
    )
    timezone = forms.ChoiceField(label="Time zone", initial="UTC")
    starts_at = forms.CharField(
        required=False,
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In the schedule's time zone; empty: now. Intervals count from here.",
    )
    images_per_run = forms.IntegerField(min_value=1, max_value=MAX_VARIANTS, initial=1, label="Images per run")
    looks = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Taken in turn, one per run."
    )
    poses = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Taken in turn, one per run."
    )
    formats = forms.MultipleChoiceField(
        choices=[(name, f"{name} ({w}×{h})") for name, (w, h) in FORMATS.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=["1:1"],
        help_text="Taken in turn, one per run.",
    )
    caption_templates = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Caption templates",
        help_text="One per line, one per image in turn. Placeholders: {persona} {handle} {look} {pose} {format} "
        "{date}; write {{ and }} for braces.",
    )
    missed_policy = forms.ChoiceField(
        choices=Schedule.MissedPolicy.choices,
        widget=forms.RadioSelect,
        initial=Schedule.MissedPolicy.SKIP,
        label="Runs missed while the service was down",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, personas, library_items, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["persona"].queryset = personas
        self.fields["timezone"].choices = zone_choices()
        looks = [(str(i.pk), i.name) for i in library_items if i.kind == LibraryItem.Kind.LOOK]
        poses = [(str(i.pk), i.name) for i in library_items if i.kind == LibraryItem.Kind.POSE]
        self.fields["looks"].choices = looks
        self.fields["poses"].choices = poses
        self.editing = editing
        if editing:
            del self.fields["persona"]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == Schedule.Kind.CRON and not data.get("cron"):
            self.add_error("cron", "Give the cron expression.")
        if kind == Schedule.Kind.INTERVAL and not data.get("interval_minutes"):
            self.add_error("interval_minutes", "Give the interval in minutes.")
        text = data.get("starts_at")
        zone_name = data.get("timezone")
        data["starts_at"] = None
        if text and zone_name:
            try:
                naive = datetime.fromisoformat(text)
            except ValueError:
                self.add_error("starts_at", "Give a date and time such as 2026-03-02T09:00.")
            else:
                data["starts_at"] = timing.wall_to_utc(naive.replace(tzinfo=None), timing.zone_get(zone_name))
        return data

    def service_values(self):
        data = self.cleaned_data
        interval = data.get("interval_minutes")
        values = {
            "name": data["name"],
            "kind": data["kind"],
            "cron": data.get("cron") or "",
            "interval_seconds": interval * 60 if data["kind"] == Schedule.Kind.INTERVAL and interval else None,
            "timezone": data["timezone"],
            "images_per_run": data["images_per_run"],
            "looks": [int(pk) for pk in data["looks"]],
            "poses": [int(pk) for pk in data["poses"]],
            "formats": data["formats"],
            "caption_templates": [line.strip() for line in data["caption_templates"].splitlines() if line.strip()],
            "missed_policy": data["missed_policy"],
            "enabled": data["enabled"],
        }
        # An edit keeps the stored start (to the second) unless it was changed.
        if data.get("starts_at") is not None and (not self.editing or "starts_at" in self.changed_data):
            values["starts_at"] = data["starts_at"]
        return values


def schedule_initial(schedule):
    zone = timing.zone_get(schedule.timezone)
    return {
        "name": schedule.name,
        "kind": schedule.kind,
        "cron": schedule.cron,
        "interval_minutes": schedule.interval_seconds // 60 if schedule.interval_seconds else None,
        "timezone": schedule.timezone,
        "starts_at": schedule.starts_at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="minutes"),
        "images_per_run": schedule.images_per_run,
        "looks": [str(pk) for pk in schedule.looks],
        "poses": [str(pk) for pk in schedule.poses],
        "formats": schedule.formats,
        "caption_templates": "\n".join(schedule.caption_templates),
        "missed_policy": schedule.missed_policy,
        "enabled": schedule.enabled,
    }
