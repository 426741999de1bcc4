"""Approval workflow services: each write and its audit row in one transaction;
events, emails and the approved files after commit."""

import logging
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES, Brand, Role
from brands.selectors import brand_role, brand_role_require
from common.events import event_emit
from config.celery import app as celery_app
from content.models import Asset
from content.services import asset_release

from .models import (
    DECISIONS,
    DECISIONS_NEEDING_REASON,
    Action,
    AssetComment,
    AssetReview,
    ReasonCode,
    ReviewDecision,
    ReviewerGroup,
    ReviewState,
    StepMode,
    Workflow,
)
from .selectors import (
    asset_makers,
    brand_member_ids,
    review_approvers,
    step_decider_ids,
    step_label,
    user_may_decide_step,
    workflow_current,
)

log = logging.getLogger(__name__)

DEFAULT_STEPS = [
    {"name": "Review", "roles": [Role.OWNER.value, Role.REVIEWER.value], "group": None, "group_name": "", "mode": "any"}
]
DECIDING_ROLES = [Role.OWNER.value, Role.CREATOR.value, Role.REVIEWER.value]
WORKFLOW_STEPS_MAX = 6
REASON_TEXT_MAX = 2000
MENTION = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")

# The event each ending decision emits; the API's webhooks subscribe to these names.
DECISION_EVENTS = {
    ReviewState.APPROVED: "asset.approved",
    ReviewState.REJECTED: "asset.rejected",
    ReviewState.CHANGES_REQUESTED: "asset.changes_requested",
}


class DecisionRefused(Exception):
    """A rule forbids this submission or decision; `code` is machine-readable."""

    def __init__(self, message, *, code):
        super().__init__(message)
        self.message = message
        self.code = code


class ReviewConflict(Exception):
    """Someone else decided first; the message says who, what and when."""

    def __init__(self, message, *, review):
        super().__init__(message)
        self.message = message
        self.review = review


class PreconditionFailed(Exception):
    """The caller's If-Match (the review's ETag when they saw it) is stale."""

    def __init__(self, *, review):
        super().__init__(f"The review changed since you saw it; it is now {review.etag}.")
        self.message = str(self)
        self.review = review
        self.current_etag = review.etag


@dataclass(frozen=True)
class ItemResult:
    """One item of a bulk action: whether it went through and what to tell the user."""

    asset_id: int
    ok: bool
    message: str
    code: str = ""


# --------------------------------------------------------------------------- workflow definition


def _workflow_ensure(*, brand):
    """The brand's current workflow revision, made from the default on first use.
    Must run in a transaction: the brand row is locked so one revision 1 is written."""
    current = workflow_current(brand=brand)
    if current is not None:
        return current
    Brand.objects.select_for_update().get(pk=brand.pk)
    current = workflow_current(brand=brand)
    if current is None:
        current = Workflow.objects.create(brand=brand, revision=1, steps=DEFAULT_STEPS)
        audit_record(actor=None, brand=brand, action="workflow.created", target=current, after={"steps": DEFAULT_STEPS})
    return current


def _steps_clean(*, brand, steps):
    if not isinstance(steps, list) or not 1 <= len(steps) <= WORKFLOW_STEPS_MAX:
        raise ValidationError({"steps": f"A workflow has 1 to {WORKFLOW_STEPS_MAX} steps."})
    groups = {g.pk: g for g in ReviewerGroup.objects.for_brand(brand)}
    cleaned = []
    for number, step in enumerate(steps, start=1):
        name = str(step.get("name", "")).strip()
        roles = sorted(set(step.get("roles") or []), key=DECIDING_ROLES.index) if _roles_known(step) else None
        group_id = step.get("group") or None
        mode = step.get("mode", StepMode.ANY)
        if not name or len(name) > 80:
            raise ValidationError({"steps": f"Step {number}: give it a name of at most 80 characters."})
        if roles is None:
            raise ValidationError({"steps": f"Step {number}: roles must be among {', '.join(DECIDING_ROLES)}."})
        if group_id is not None and int(group_id) not in groups:
            raise ValidationError({"steps": f"Step {number}: no such reviewer group in this brand."})
        if not roles and group_id is None:
            raise ValidationError({"steps": f"Step {number}: name at least one role or a reviewer group who decide."})
        if mode not in StepMode.values:
            raise ValidationError({"steps": f"Step {number}: mode must be 'any' or 'all'."})
        group = groups.get(int(group_id)) if group_id is not None else None
        cleaned.append(
            {
                "name": name,
                "roles": roles,
                "group": group.pk if group else None,
                "group_name": group.name if group else "",
                # The group's members as they are now: reviews on this revision keep them.
                "members": sorted(group.members.values_list("pk", flat=True)) if group else [],
                "mode": mode,
            }
        )
    return cleaned


def _roles_known(step):
    roles = step.get("roles") or []
    return isinstance(roles, list | tuple) and all(role in DECIDING_ROLES for role in roles)


@transaction.atomic
def workflow_update(*, actor, brand, steps):
    """Write the brand's next workflow revision. Owners only. Reviews already under
    way finish on the revision they started on."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    return _revision_write(actor=actor, brand=brand, steps=steps)


def _revision_write(*, actor, brand, steps):
    cleaned = _steps_clean(brand=brand, steps=steps)
    Brand.objects.select_for_update().get(pk=brand.pk)
    current = workflow_current(brand=brand)
    workflow = Workflow.objects.create(
        brand=brand, revision=(current.revision + 1) if current else 1, steps=cleaned, created_by=actor
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="workflow.updated",
        target=workflow,
        before={"revision": current.revision, "steps": current.steps} if current else None,
        after={"revision": workflow.revision, "steps": cleaned},
    )
    return workflow


@transaction.atomic
def reviewer_group_save(*, actor, brand, name, member_ids, group=None):
    """Create a reviewer group or rename it and set its members (brand members only). Owners only."""
    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationError({"name": "Give the group a name of at most 80 characters."})
    if ReviewerGroup.objects.for_brand(brand).filter(name=name).exclude(pk=getattr(group, "pk", None)).exists():
        raise ValidationError({"name": f"This brand already has a group called {name!r}."})
    members = set(int(pk) for pk in member_ids)
    outsiders = members - brand_member_ids(brand=brand)
    if outsiders:
        raise ValidationError({"members": "Only members of this brand can be in its reviewer groups."})
    before = {"name": group.name, "members": sorted(group.members.values_list("pk", flat=True))} if group else None
    if group is None:
        group = ReviewerGroup.objects.create(brand=brand, name=name)
    else:
        group.name = name
        group.save(update_fields=["name"])
    group.members.set(members)
    audit_record(
        actor=actor,
        brand=brand,
        action="reviewer_group.saved",
        target=group,
        before=before,
        after={"name": name, "members": sorted(members)},
    )
    current = workflow_current(brand=brand)
    if current is not None and any(step.get("group") == group.pk for step in current.steps):
        # The workflow names this group: its new members make a new revision, so
        # that reviews under way keep the deciders they started with.
        _revision_write(actor=actor, brand=brand, steps=current.steps)
    return group


# --------------------------------------------------------------------------- submitting


def review_submit(*, actor, brand, asset):
    """Send one asset into review on the brand's current workflow. Creators and owners."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if asset.brand_id != brand.pk:
        raise DecisionRefused("No such asset in this brand.", code="not_found")
    if not asset.sha256:
        raise DecisionRefused(
            "This image was made before images carried a content hash; render it again to review it.",
            code="no_content_hash",
        )
    try:
        with transaction.atomic():
            workflow = _workflow_ensure(brand=brand)
            now = timezone.now()
            review = AssetReview(
                brand=brand,
                asset=asset,
                workflow=workflow,
                content_sha256=asset.sha256,
                persona_version_id=asset.version_id,
                submitted_by=actor,
                submitted_at=now,
                revision=1,
            )
            review.submit()
            review.save()
            _decision_record(review=review, actor=actor, action=Action.SUBMIT, from_state=ReviewState.DRAFT)
            audit_record(
                actor=actor,
                brand=brand,
                action="review.submitted",
                target=review,
                before={"state": ReviewState.DRAFT},
                after=_audit_state(review),
            )
            event_emit(name="review.submitted", brand=brand, payload=_event_payload(review, actor=actor))
    except IntegrityError:
        existing = AssetReview.objects.for_brand(brand).get(asset=asset)
        raise DecisionRefused(
            f"Already submitted for review ({existing.get_state_display().lower()}).", code="already_submitted"
        ) from None
    return review


def reviews_submit(*, actor, brand, asset_ids):
    """Submit each asset on its own; one result per asset."""
    assets = {a.pk: a for a in Asset.objects.for_brand(brand).filter(pk__in=asset_ids)}
    results = []
    for asset_id in asset_ids:
        asset = assets.get(asset_id)
        if asset is None:
            results.append(ItemResult(asset_id, False, "No such asset in this brand.", "not_found"))
            continue
        try:
            review_submit(actor=actor, brand=brand, asset=asset)
        except DecisionRefused as refused:
            results.append(ItemResult(asset_id, False, refused.message, refused.code))
        else:
            results.append(ItemResult(asset_id, True, "Submitted for review."))
    return results


# --------------------------------------------------------------------------- deciding


def review_decide(*, actor, brand, asset_id, action, reason_code="", reason_text="", expected_step=None, if_match=None):
    """Take one reviewer's decision on an asset in review, in one transaction that
    holds the review's row lock: of two reviewers deciding at once, the second sees
    the first's outcome and gets ReviewConflict.

    expected_step: the step index the reviewer saw (dashboard forms); if_match: the
    ETag they saw (the API). Either being stale refuses the decision.
    """
    if action not in DECISIONS:
        raise DecisionRefused(f"Unknown decision {action!r}.", code="unknown_action")
    reason_text = (reason_text or "").strip()
    if action in DECISIONS_NEEDING_REASON:
        if reason_code not in ReasonCode.values:
            raise DecisionRefused("Choose a reason for this decision.", code="reason_required")
        if reason_code == ReasonCode.OTHER and not reason_text:
            raise DecisionRefused("Say what is wrong: the reason 'Other' needs a few words.", code="reason_required")
        if len(reason_text) > REASON_TEXT_MAX:
            raise DecisionRefused(f"Keep the reason under {REASON_TEXT_MAX} characters.", code="reason_too_long")
    else:
        reason_code, reason_text = "", ""
    with transaction.atomic():
        review = (
            AssetReview.objects.for_brand(brand)
            # Only the immutable workflow is joined: PostgreSQL re-reads the locked row
            # after a lock wait but not the rows joined to it, so the asset and the
            # first decider are loaded afresh once the lock is held.
            .select_for_update(of=("self",))
            .select_related("workflow")
            .filter(asset_id=asset_id)
            .first()
        )
        if review is None:
            raise DecisionRefused("This image has not been submitted for review.", code="not_in_review")
        if if_match is not None and if_match != review.etag:
            raise PreconditionFailed(review=review)
        _decision_check(review=review, actor=actor, brand=brand, action=action, expected_step=expected_step)
        from_state, step_index = review.state, review.step_index
        step = review.workflow.step(step_index)
        if action == Action.APPROVE:
            finished = _step_finished(review=review, step=step, brand=brand, approver=actor)
            if finished and step_index + 1 < len(review.workflow.steps):
                review.step_index = step_index + 1
            elif finished:
                review.approve()
        elif action == Action.REJECT:
            review.reject()
        else:
            review.request_changes()
        if review.state != ReviewState.IN_REVIEW:
            review.decided_by, review.decided_at = actor, timezone.now()
        review.revision += 1
        review.save()
        decision = _decision_record(
            review=review,
            actor=actor,
            action=action,
            from_state=from_state,
            step_index=step_index,
            reason_code=reason_code,
            reason_text=reason_text,
        )
        audit_record(
            actor=actor,
            brand=brand,
            action=f"review.{action}",
            target=review,
            before={"state": from_state, "step": step_index, "step_name": step["name"]},
            after={
                **_audit_state(review),
                "reason_code": reason_code,
                "reason_text": reason_text,
                "content_sha256": review.content_sha256,
            },
        )
        payload = _event_payload(review, actor=actor, reason_code=reason_code, reason_text=reason_text)
        if review.state in DECISION_EVENTS:
            event_emit(name=DECISION_EVENTS[review.state], brand=brand, payload=payload)
        elif review.step_index != step_index:
            event_emit(name="review.step_passed", brand=brand, payload=payload)
        if review.state == ReviewState.APPROVED:
            transaction.on_commit(lambda: review_release_request(review_id=review.pk))
    return decision


def _decision_check(*, review, actor, brand, action, expected_step):
    if review.state != ReviewState.IN_REVIEW:
        raise ReviewConflict(_already_decided(review), review=review)
    step = review.workflow.step(review.step_index)
    if expected_step is not None and int(expected_step) != review.step_index:
        raise ReviewConflict(
            f"This image moved on to step “{step['name']}” since you opened it; look again before deciding.",
            review=review,
        )
    asset = review.asset
    if asset.sha256 != review.content_sha256 or asset.version_id != review.persona_version_id:
        raise DecisionRefused(
            "This image is not the one that was submitted for review; it needs a review of its own.",
            code="content_changed",
        )
    if action == Action.APPROVE:
        makers = asset_makers(asset=asset)
        if actor.pk in makers:
            raise DecisionRefused(makers[actor.pk], code="own_work")
    if not user_may_decide_step(user=actor, brand=brand, step=step):
        raise DecisionRefused(
            f"Step “{step['name']}” is decided by {step_label(step)}; you are not one of them.", code="not_a_decider"
        )
    already = ReviewDecision.objects.for_brand(brand).filter(
        review=review, step_index=review.step_index, actor=actor, action=Action.APPROVE
    )
    if action == Action.APPROVE and already.exists():
        raise ReviewConflict(f"You already approved step “{step['name']}”; waiting for the others.", review=review)


def _already_decided(review):
    if review.decided_at is None:
        return f"This image is {review.get_state_display().lower()}; there is nothing to decide."
    when = timezone.localtime(review.decided_at)
    stamp = when.strftime("%H:%M") if when.date() == timezone.localdate() else when.strftime("%Y-%m-%d %H:%M")
    who = review.decided_by.get_username() if review.decided_by else "someone"
    return f"Already {review.get_state_display().lower()} by {who} at {stamp}."


def _step_finished(*, review, step, brand, approver):
    """Whether this approval completes the step: any one decider, or every decider
    (those who could approve it: the asset's makers excluded) for an "all" step."""
    if step["mode"] == StepMode.ANY:
        return True
    makers = set(asset_makers(asset=review.asset))
    needed = step_decider_ids(brand=brand, step=step) - makers
    approved = review_approvers(review=review, step_index=review.step_index) | {approver.pk}
    return needed <= approved


def reviews_decide(*, actor, brand, asset_ids, action, reason_code="", reason_text=""):
    """A bulk decision: each asset decided on its own (its own transaction, its own
    rules); one result per asset."""
    results = []
    for asset_id in asset_ids:
        try:
            review_decide(
                actor=actor,
                brand=brand,
                asset_id=asset_id,
                action=action,
                reason_code=reason_code,
                reason_text=reason_text,
            )
        except (DecisionRefused, ReviewConflict) as refused:
            code = getattr(refused, "code", "conflict")
            results.append(ItemResult(asset_id, False, refused.message, code))
        else:
            results.append(ItemResult(asset_id, True, Action(action).label + "."))
    return results


def _decision_record(*, review, actor, action, from_state, step_index=None, reason_code="", reason_text=""):
    step_index = review.step_index if step_index is None else step_index
    return ReviewDecision.objects.create(
        brand_id=review.brand_id,
        review=review,
        actor=actor,
        action=action,
        step_index=step_index,
        step_name=review.workflow.step(step_index)["name"],
        from_state=from_state,
        to_state=review.state,
        reason_code=reason_code,
        reason_text=reason_text,
        content_sha256=review.content_sha256,
    )


def _audit_state(review):
    return {
        "state": review.state,
        "step": review.step_index,
        "workflow_revision": review.workflow.revision,
        "asset": review.asset_id,
        "content_sha256": review.content_sha256,
        "persona_version": review.persona_version_id,
    }


def _event_payload(review, *, actor, reason_code="", reason_text=""):
    return {
        "asset_id": review.asset_id,
        "review_id": review.pk,
        "state": review.state,
        "step": review.step_index,
        "step_name": review.workflow.step(review.step_index)["name"],
        "actor": actor.get_username() if actor else None,
        "reason_code": reason_code,
        "reason_text": reason_text,
        "content_sha256": review.content_sha256,
        "persona_version_id": review.persona_version_id,
        "etag": review.etag,
    }


# --------------------------------------------------------------------------- publishing's moves

# The transitions publishing takes on an approved review (approvals own the rest).
PUBLISHING_TRANSITIONS = ("schedule", "unschedule", "publish", "lapse")


def review_publishing_move(*, review, transition):
    """Move an approved review along publishing's part of the state machine.
    The caller holds the review's row lock inside its own transaction, and
    writes the audit row of the post that caused the move."""
    if transition not in PUBLISHING_TRANSITIONS:
        raise ValueError(f"publishing does not {transition} reviews; it may {', '.join(PUBLISHING_TRANSITIONS)}")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("review_publishing_move must run inside the transaction holding the review's lock")
    getattr(review, transition)()
    review.revision += 1
    review.save()
    return review


# --------------------------------------------------------------------------- releasing


RELEASE_TASK = "approvals.release"


def review_release_request(*, review_id):
    """Ask a worker (queue "default") to release an approved asset: making its files
    takes a tenth of a second an image, too long for a bulk approval's request. A
    broker that cannot be reached is logged; the release sweep asks again."""
    try:
        celery_app.send_task(RELEASE_TASK, args=[review_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the sweep asks again
        log.warning("Release of review %s not requested yet (task queue unreachable: %s)", review_id, exc)
        return False
    return True


def review_release(*, review_id):
    """Make an approved asset's files without the DRAFT mark (content.asset_release),
    recording the approval in a new C2PA manifest. Runs in a worker after the
    approval commits; a failure is logged and the sweep (approvals.release_sweep)
    tries again."""
    review = AssetReview.objects.unscoped().select_related("asset", "workflow").get(pk=review_id)
    if review.state not in (ReviewState.APPROVED, ReviewState.SCHEDULED, ReviewState.PUBLISHED):
        return None
    approvers = (
        ReviewDecision.objects.for_brand(review.brand)
        .filter(review=review, action=Action.APPROVE)
        .select_related("actor")
        .order_by("created_at")
    )
    approval = {
        "review_id": review.pk,
        "approved_by": [d.actor.get_username() for d in approvers if d.actor],
        "approved_at": review.decided_at.isoformat(),
        "workflow": [step["name"] for step in review.workflow.steps],
        "revision": review.workflow.revision,
        "content_sha256": review.content_sha256,
    }
    try:
        asset = asset_release(asset=review.asset, approval=approval)
    except Exception:
        log.exception("Review %s: making the approved files of asset %s failed", review.pk, review.asset_id)
        return None
    # asset.approved is the decision; this says the approved files can now be downloaded.
    event_emit(
        name="asset.released",
        brand=review.brand,
        payload={"asset_id": asset.pk, "review_id": review.pk, "content_sha256": review.content_sha256},
    )
    return asset


def reviews_release_sweep():
    """Release every approved asset whose approved files are missing (beat, every
    10 minutes): releases whose request was lost or whose worker failed."""
    pending = AssetReview.objects.unscoped().filter(
        state__in=[ReviewState.APPROVED, ReviewState.SCHEDULED, ReviewState.PUBLISHED],
        asset__released_at__isnull=True,
    )
    return sum(1 for review_id in pending.values_list("pk", flat=True) if review_release(review_id=review_id))


# --------------------------------------------------------------------------- comments


@transaction.atomic
def comment_add(*, actor, brand, asset, body, parent_id=None):
    """A member's comment on an asset, or a reply; @username mentions of the brand's
    members are kept and notified after commit."""
    if brand_role(user=actor, brand=brand) is None or asset.brand_id != brand.pk:
        raise PermissionDenied("Only members of this brand may comment on its images.")
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write something first."})
    if len(body) > 4000:
        raise ValidationError({"body": "Keep a comment under 4000 characters."})
    parent = None
    if parent_id:
        parent = AssetComment.objects.for_brand(brand).filter(pk=parent_id, asset=asset).first()
        if parent is None:
            raise ValidationError({"parent": "That comment is not on this image."})
    usernames = set(MENTION.findall(body))
    members = brand_member_ids(brand=brand)
    mentioned = list(
        get_user_model()
        .objects.filter(username__in=usernames, pk__in=members)
        .exclude(pk=actor.pk)
        .values_list("pk", flat=True)
    )
    comment = AssetComment.objects.create(brand=brand, asset=asset, parent=parent, author=actor, body=body)
    comment.mentions.set(mentioned)
    audit_record(
        actor=actor,
        brand=brand,
        action="comment.added",
        target=comment,
        after={"asset": asset.pk, "parent": parent.pk if parent else None, "mentions": sorted(mentioned)},
    )
    event_emit(
        name="comment.created",
        brand=brand,
        payload={
            "comment_id": comment.pk,
            "asset_id": asset.pk,
            "author": actor.get_username(),
            "mentioned_user_ids": sorted(mentioned),
        },
    )
    return comment
