"""Approval workflow: the definition (Workflow revisions, ReviewerGroup) is kept
apart from the runtime (AssetReview and its decisions), as Wagtail does: a review
finishes on the workflow revision it started on, whatever is edited meanwhile.

An AssetReview's state moves only through the transitions declared below
(django-fsm-2, protected field: assigning `state` directly raises), and only
approvals.services calls them, inside a transaction holding the row's lock.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from brands.tenancy import BrandScopedManager


class ReviewState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REJECTED = "rejected", "Rejected"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHED = "published", "Published"
    LAPSED = "lapsed", "Lapsed (its post's time passed unpublished)"


# States in which the asset may be used (served and downloaded without the DRAFT mark).
RELEASED_STATES = frozenset({ReviewState.APPROVED, ReviewState.SCHEDULED, ReviewState.PUBLISHED})


class Action(models.TextChoices):
    SUBMIT = "submit", "Submitted for review"
    APPROVE = "approve", "Approved"
    REQUEST_CHANGES = "request_changes", "Requested changes"
    REJECT = "reject", "Rejected"


# Decisions a reviewer takes; the ones that end a review need a reason.
DECISIONS = (Action.APPROVE, Action.REQUEST_CHANGES, Action.REJECT)
DECISIONS_NEEDING_REASON = frozenset({Action.REQUEST_CHANGES, Action.REJECT})


class ReasonCode(models.TextChoices):
    OFF_BRAND = "off_brand", "Off brand"
    IDENTITY = "identity", "Does not look like the persona"
    OUTFIT_POSE = "outfit_pose", "Wrong outfit or pose"
    ARTEFACT = "artefact", "Visual artefact"
    DISCLOSURE = "disclosure", "Disclosure or legal problem"
    OTHER = "other", "Other (say what)"


class StepMode(models.TextChoices):
    ANY = "any", "Any one of them"
    ALL = "all", "All of them"


class ReviewerGroup(models.Model):
    """A named set of a brand's members, which a workflow step can name as its deciders."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="reviewer_groups")
    name = models.CharField(max_length=80)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="reviewer_groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="reviewergroup_unique_brand_name")]

    def __str__(self):
        return self.name


class Workflow(models.Model):
    """One revision of a brand's approval workflow; never changed once written.
    Editing the workflow writes the next revision; the highest is the current one.

    steps: [{"name": str, "roles": [role, ...], "group": group id or None,
             "group_name": str, "mode": "any" | "all"}, ...] in order. A member may
    decide a step when their role is one of `roles` or they belong to `group`.
    """

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="workflows")
    revision = models.PositiveIntegerField()
    steps = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["brand", "-revision"]
        constraints = [models.UniqueConstraint(fields=["brand", "revision"], name="workflow_unique_brand_revision")]

    def __str__(self):
        return f"Workflow r{self.revision} of brand {self.brand_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("A workflow revision is never changed; save a new revision instead.")
        super().save(*args, **kwargs)

    def step(self, index):
        return self.steps[index]


class AssetReview(ConcurrentTransitionMixin, models.Model):
    """The review of one asset: bound to the bytes that were reviewed (the master's
    sha256) and the persona version it shows. Any other render, crop or version is
    another asset with a review of its own."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    asset = models.OneToOneField("content.Asset", on_delete=models.CASCADE, related_name="review")
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="reviews")
    content_sha256 = models.CharField(max_length=64)
    persona_version = models.ForeignKey("avatars.PersonaVersion", on_delete=models.CASCADE, related_name="+")
    state = FSMField(default=ReviewState.DRAFT, choices=ReviewState.choices, protected=True)
    step_index = models.PositiveSmallIntegerField(default=0)
    # Counts every change (a decision, a step passed): the ETag a caller must quote.
    revision = models.PositiveIntegerField(default=0)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Who ended the review (approved, rejected, asked for changes) and when.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["brand", "state", "step_index"])]

    def __str__(self):
        return f"Review of asset {self.asset_id}: {self.state}"

    @property
    def etag(self):
        return f'"review-{self.pk}-r{self.revision}"'

    @property
    def current_step(self):
        return self.workflow.step(self.step_index) if self.state == ReviewState.IN_REVIEW else None

    @transition(field=state, source=ReviewState.DRAFT, target=ReviewState.IN_REVIEW)
    def submit(self):
        pass

    @transition(field=state, source=ReviewState.IN_REVIEW, target=ReviewState.APPROVED)
    def approve(self):
        pass

    @transition(field=state, source=ReviewState.IN_REVIEW, target=ReviewState.CHANGES_REQUESTED)
    def request_changes(self):
        pass

    @transition(field=state, source=ReviewState.IN_REVIEW, target=ReviewState.REJECTED)
    def reject(self):
        pass

    @transition(field=state, source=ReviewState.APPROVED, target=ReviewState.SCHEDULED)
    def schedule(self):
        pass

    @transition(field=state, source=ReviewState.SCHEDULED, target=ReviewState.APPROVED)
    def unschedule(self):
        pass

    @transition(field=state, source=ReviewState.SCHEDULED, target=ReviewState.PUBLISHED)
    def publish(self):
        pass

    @transition(field=state, source=[ReviewState.APPROVED, ReviewState.SCHEDULED], target=ReviewState.LAPSED)
    def lapse(self):
        pass


class ReviewDecision(models.Model):
    """One step of a review's history: a submission or a reviewer's decision."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    review = models.ForeignKey(AssetReview, on_delete=models.CASCADE, related_name="decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    step_index = models.PositiveSmallIntegerField()
    step_name = models.CharField(max_length=80)
    from_state = models.CharField(max_length=20, choices=ReviewState.choices)
    to_state = models.CharField(max_length=20, choices=ReviewState.choices)
    reason_code = models.CharField(max_length=20, choices=ReasonCode.choices, blank=True)
    reason_text = models.TextField(blank=True)
    content_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.action} of review {self.review_id} by {self.actor_id}"


class AssetComment(models.Model):
    """A comment on an asset; a reply names its parent. @username mentions of the
    brand's members are resolved when the comment is written and notify them."""

    brand = models.ForeignKey("brands.Brand", on_delete=models.CASCADE, related_name="+")
    asset = models.ForeignKey("content.Asset", on_delete=models.CASCADE, related_name="comments")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField(max_length=4000)
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandScopedManager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"Comment {self.pk} on asset {self.asset_id}"
