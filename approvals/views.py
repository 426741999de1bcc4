"""Dashboard pages of the approval workflow: the queue, bulk decisions and
submissions, and the asset page with its review and comments."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from avatars.selectors import personas_for_brand
from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get
from campaigns.selectors import campaigns_for_brand
from campaigns.views import asset_page_context
from content.selectors import asset_get

from .models import DECISIONS, Action, ReasonCode, ReviewState
from .selectors import (
    asset_makers,
    comments_for_asset,
    persona_reference_assets,
    queue_assets,
    queue_counts,
    review_for_asset,
    review_history,
    step_label,
    user_may_decide_step,
    workflow_current,
)
from .services import (
    DecisionRefused,
    ItemResult,
    ReviewConflict,
    comment_add,
    review_decide,
    reviews_decide,
    reviews_submit,
)

QUEUE_PAGE_SIZE = 48
BULK_MAX = 200


@login_required
def approval_queue(request, brand_slug):
    """Images by review state, filtered by campaign, persona and step; reviewers
    decide a selection at once or one at a time (keyboard: j/k, x, a, r)."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    brand = access.brand
    state = request.GET.get("state") or ReviewState.IN_REVIEW
    if state not in ReviewState.values:
        state = ReviewState.IN_REVIEW
    campaign_id = _int_or_none(request.GET.get("campaign"))
    persona_id = _int_or_none(request.GET.get("persona"))
    step = _int_or_none(request.GET.get("step"))
    assets = queue_assets(brand=brand, state=state, campaign_id=campaign_id, persona_id=persona_id, step=step)
    page = Paginator(assets, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    references = persona_reference_assets(brand=brand, persona_ids=[a.persona_id for a in page])
    cards = [_card(asset, user=request.user, role=access.role, brand=brand, references=references) for asset in page]
    workflow = workflow_current(brand=brand)
    return render(
        request,
        "approvals/queue.html",
        {
            "brand": brand,
            "role": access.role,
            "state": state,
            "states": [(value, label, count) for (value, label), count in _state_counts(brand)],
            "filters": {"campaign": campaign_id, "persona": persona_id, "step": step},
            "campaigns": campaigns_for_brand(brand=brand)[:200],
            "personas": personas_for_brand(brand=brand),
            "steps": list(enumerate(workflow.steps)) if workflow else [],
            "page": page,
            "cards": cards,
            "reason_codes": ReasonCode.choices,
            "can_submit": access.role in CREATE_ROLES,
            "threshold": brand.identity_threshold,
            "query": request.GET.urlencode(),
        },
    )


def _state_counts(brand):
    counts = queue_counts(brand=brand)
    return [((value, label), counts[value]) for value, label in ReviewState.choices]


def _card(asset, *, user, role, brand, references):
    review = getattr(asset, "review", None)
    step = review.current_step if review else None
    makers = asset_makers(asset=asset) if step else {}
    may_decide = step is not None and user_may_decide_step(user=user, brand=brand, step=step, role=role)
    reference = references.get(asset.persona_id)
    item = getattr(asset.job, "campaign_item", None) if asset.job_id else None
    return {
        "asset": asset,
        "review": review,
        "step": step,
        "step_label": step_label(step) if step else "",
        "reference": reference,
        "campaign": item.campaign if item else None,
        "may_decide": may_decide,
        "own_work": makers.get(user.pk, ""),
    }


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _selected_ids(request):
    only = _int_or_none(request.POST.get("only"))
    if only is not None:
        return [only]
    ids = [_int_or_none(v) for v in request.POST.getlist("asset")]
    return list(dict.fromkeys(i for i in ids if i is not None))[:BULK_MAX]


def _back(request, brand):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("approval-queue", brand_slug=brand.slug)


def _report(request, results, *, done):
    """One message for what went through, one per item that did not."""
    succeeded = [r for r in results if r.ok]
    if succeeded:
        messages.success(request, f"{done} {len(succeeded)} image{'s' if len(succeeded) != 1 else ''}.")
    for result in results:
        if not result.ok:
            messages.error(request, f"Image {result.asset_id}: {result.message}")
    if not results:
        messages.error(request, "Select at least one image first.")


@login_required
@require_POST
def approvals_decide(request, brand_slug):
    """Approve, request changes on or reject the selected images (or the one
    whose button was pressed), each checked on its own."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    action = request.POST.get("action", "")
    if action not in DECISIONS:
        messages.error(request, "Choose approve, request changes or reject.")
        return _back(request, access.brand)
    ids = _selected_ids(request)
    reason = {"reason_code": request.POST.get("reason_code", ""), "reason_text": request.POST.get("reason_text", "")}
    if len(ids) == 1 and request.POST.get("expected_step") is not None:
        results = _decide_one(request, access.brand, ids[0], action, reason)
    else:
        results = reviews_decide(actor=request.user, brand=access.brand, asset_ids=ids, action=action, **reason)
    _report(request, results, done=Action(action).label)
    return _back(request, access.brand)


def _decide_one(request, brand, asset_id, action, reason):
    """A decision from the asset page, which also names the step the reviewer saw."""
    try:
        review_decide(
            actor=request.user,
            brand=brand,
            asset_id=asset_id,
            action=action,
            expected_step=_int_or_none(request.POST.get("expected_step")),
            **reason,
        )
    except (DecisionRefused, ReviewConflict) as refused:
        return [ItemResult(asset_id, False, refused.message, getattr(refused, "code", "conflict"))]
    return [ItemResult(asset_id, True, "")]


@login_required
@require_POST
def approvals_submit(request, brand_slug):
    """Send the selected images (or one) into review. Creators and owners."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    results = reviews_submit(actor=request.user, brand=access.brand, asset_ids=_selected_ids(request))
    _report(request, results, done="Submitted for review:")
    return _back(request, access.brand)


@login_required
@require_http_methods(["GET", "POST"])
def asset_detail(request, brand_slug, asset_id):
    """The asset page (campaigns' picture, files, provenance, Verify) with its
    review: state, step, history, the decision form, and comments."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=access.brand, asset_id=asset_id)
    context = asset_page_context(request, access=access, asset=asset)
    review = review_for_asset(brand=access.brand, asset=asset)
    step = review.current_step if review else None
    makers = asset_makers(asset=asset)
    context.update(
        {
            "review": review,
            "step": step,
            "step_label": step_label(step) if step else "",
            "history": review_history(brand=access.brand, review=review) if review else [],
            "may_decide": step is not None
            and user_may_decide_step(user=request.user, brand=access.brand, step=step, role=access.role),
            "own_work": makers.get(request.user.pk, ""),
            "can_submit": review is None and access.role in CREATE_ROLES,
            "can_post": access.role in CREATE_ROLES,
            "reason_codes": ReasonCode.choices,
            "comments": comments_for_asset(brand=access.brand, asset=asset),
            "here": reverse("asset-detail", kwargs={"brand_slug": access.brand.slug, "asset_id": asset.pk}),
        }
    )
    return render(request, "approvals/asset_detail.html", context)


@login_required
@require_POST
def comment_create(request, brand_slug, asset_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    asset = asset_get(brand=access.brand, asset_id=asset_id)
    try:
        comment_add(
            actor=request.user,
            brand=access.brand,
            asset=asset,
            body=request.POST.get("body", ""),
            parent_id=_int_or_none(request.POST.get("parent")),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Comment added.")
    page = reverse("asset-detail", kwargs={"brand_slug": access.brand.slug, "asset_id": asset.pk})
    return redirect(page + "#comments")
