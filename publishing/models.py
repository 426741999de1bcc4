"""Publishing: channels with their disclosure policy, schedules that make
campaigns on their own, and posts of approved assets to channels.

Every instant is stored in UTC; schedules keep their IANA zone for reading cron
expressions on its wall clock (publishing.timing).
"""

import uuid

from django.conf import settings
from django.db import models

from brands.tenancy import BrandScopedManager


class Channel(models.Model):
    """Where a brand's posts go, through the connector class of its `kind`
    (publishing.connectors), and what a post must carry to go there."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="publishing_channels")
    name = models.CharField(max_length=80)
    # A key of publishing.connectors.CONNECTORS ("webhook", "export", ...): not
    # database choices, so a new network is a new class and no migration.
    kind = models.CharField(max_length=40)
    # The connector's own settings (export: {"prefix": ...}; a network: its account).
    config = models.JSONField(default=dict, blank=True)
    # The webhook connector POSTs to this endpoint of the brand, signed with its secret.
    webhook_endpoint = models.ForeignKey(
        "webhooks.WebhookEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Disclosure policy: labels the caption must contain (case-insensitive), and
    # the metadata the published file must carry.
    caption_labels = models.JSONField(default=list, blank=True)
    require_c2pa = models.BooleanField(default=True)
    require_digital_source_type = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="channel_unique_brand_name")]

    def __str__(self):
        return self.name


class Schedule(models.Model):
    """A persona's recurring campaign: at each run, N images of one rotation step
    (look, pose, format) with captions rotating through the templates."""

    class Kind(models.TextChoices):
        CRON = "cron", "Cron expression"
        INTERVAL = "interval", "Interval"

    class MissedPolicy(models.TextChoices):
        SKIP = "skip", "Skip missed runs"
        CATCH_UP_ONCE = "catch_up_once", "Catch up once"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="publishing_schedules")
    persona = models.ForeignKey("avatars.Persona", on_delete=models.CASCADE, related_name="publishing_schedules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    cron = models.CharField(max_length=120, blank=True)
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Intervals count from here; cron schedules start here (no run before it).
    starts_at = models.DateTimeField()
    timezone = models.CharField(max_length=64)
    images_per_run = models.PositiveSmallIntegerField(default=1)
    # LibraryItem ids, in rotation order; empty: the persona as pinned.
    looks = models.JSONField(default=list, blank=True)
    poses = models.JSONField(default=list, blank=True)
    formats = models.JSONField(default=list)
    caption_templates = models.JSONField(default=list)
    missed_policy = models.CharField(max_length=16, choices=MissedPolicy.choices, default=MissedPolicy.SKIP)
    enabled = models.BooleanField(default=True)
    # The next due instant (UTC); null when disabled. The tick selects on it.
    next_run_at = models.DateTimeField(null=True, blank=True)
    # Runs that made a campaign so far: the rotation's position.
    runs_made = models.PositiveIntegerField(default=0)
    # The user each run acts as (its campaign's creator, the reviews' submitter).
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="schedule_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="cron", interval_seconds__isnull=True)
                | models.Q(kind="interval", interval_seconds__isnull=False, cron=""),
                name="schedule_cron_xor_interval",
            ),
            models.CheckConstraint(condition=models.Q(images_per_run__gte=1), name="schedule_images_gte_1"),
        ]

    def __str__(self):
        return self.name


class ScheduleRun(models.Model):
    """One due time of a schedule, recorded once whatever ticks at it: the unique
    (schedule, due_at) is what makes a run happen exactly once."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Campaign submitted"
        IN_REVIEW = "in_review", "Images in review"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (missed)"

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    started_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    # The rotation step (runs_made before it) and what it chose.
    sequence = models.PositiveIntegerField(null=True, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    # Missed due times this run stands for (catch up once) or skipped (skip).
    missed = models.PositiveIntegerField(default=0)
    campaign = models.OneToOneField(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_run"
    )
    error = models.TextField(blank=True)
    submitted_for_review_at = models.DateTimeField(null=True, blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="schedulerun_unique_due")]

    def __str__(self):
        return f"Run of schedule {self.schedule_id} due {self.due_at:%Y-%m-%d %H:%M}"


class CaptionDraft(models.Model):
    """The caption a schedule's template gave one of its run's images: the
    default caption of a post of that asset."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    asset = models.OneToOneField("content.Asset", on_delete=models.CASCADE, related_name="caption_draft")
    run = models.ForeignKey(ScheduleRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="captions")
    template = models.TextField(blank=True)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    def __str__(self):
        return f"Caption of asset {self.asset_id}"


class Post(models.Model):
    """An approved asset with a caption on a channel at a time.

    scheduled -> publishing -> published | failed; scheduled | failed -> cancelled;
    scheduled | failed -> lapsed (publish_at passed unpublished: the approval lapses).
    A failed attempt that may be retried goes back to scheduled with next_attempt_at."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHING = "publishing", "Publishing"
        PUBLISHED = "published", "Published"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        LAPSED = "lapsed", "Lapsed"

    ACTIVE = (State.SCHEDULED, State.PUBLISHING, State.FAILED)

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    asset = models.ForeignKey("content.Asset", on_delete=models.PROTECT, related_name="posts")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="posts")
    caption = models.TextField(blank=True)
    publish_at = models.DateTimeField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.SCHEDULED)
    # Sent to the channel with every attempt (webhook-id, Idempotency-Key, export
    # file name) so that a retried attempt is recognised there as the same post.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Every attempt ever (numbers the publish log); failures since it was last
    # (re)scheduled (the backoff and the attempts limit count these).
    attempts = models.PositiveSmallIntegerField(default=0)
    failures = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # An attempt holds the post until then; past it the attempt is taken for lost.
    locked_until = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    external_url = models.URLField(max_length=2000, blank=True)
    # Why it cannot go (disclosure policy, approval): shown beside the post.
    blocked_reason = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["publish_at", "id"]
        indexes = [
            models.Index(fields=["brand", "publish_at"], name="post_calendar"),
            models.Index(fields=["state", "publish_at"], name="post_due"),
        ]
        constraints = [
            # One live post of an asset per channel.
            models.UniqueConstraint(
                fields=["asset", "channel"],
                condition=models.Q(state__in=["scheduled", "publishing", "failed"]),
                name="post_unique_active_asset_channel",
            )
        ]

    def __str__(self):
        return f"Post {self.pk} of asset {self.asset_id} on {self.channel_id}"


class PublishAttempt(models.Model):
    """The publish log: one attempt of a post and what the connector answered."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    retryable = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["post", "number"]
        constraints = [models.UniqueConstraint(fields=["post", "number"], name="publishattempt_unique_number")]

    def __str__(self):
        return f"Attempt {self.number} of post {self.post_id}"


class ApprovalLapse(models.Model):
    """An asset whose approval lapsed: a post's time passed unpublished. It may
    not be posted again (its released files were withdrawn)."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    asset = models.OneToOneField("content.Asset", on_delete=models.CASCADE, related_name="approval_lapse")
    post = models.ForeignKey(Post, null=True, on_delete=models.SET_NULL, related_name="+")
    lapsed_at = models.DateTimeField()

    objects = BrandScopedManager()

    def __str__(self):
        return f"Approval of asset {self.asset_id} lapsed"
