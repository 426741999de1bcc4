"""The brand's approval workflow and reviewer groups: every member reads them,
owners change them. A change writes a new workflow revision; reviews under way
keep the revision they started on, which the page says whenever it saves."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from brands.models import Role
from brands.selectors import brand_access_get
from common.forms import service_errors_add

from .forms import ReviewerGroupForm, WorkflowForm
from .models import StepMode
from .selectors import brand_members, reviewer_groups_for_brand, step_label, workflow_current
from .services import DEFAULT_STEPS, WORKFLOW_STEPS_MAX, reviewer_group_save, workflow_update

OWNERS = {Role.OWNER}


@login_required
@require_http_methods(["GET", "POST"])
def workflow_settings(request, brand_slug):
    posted = request.method == "POST"
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS if posted else None)
    brand = access.brand
    groups = reviewer_groups_for_brand(brand=brand)
    current = workflow_current(brand=brand)
    if access.role != Role.OWNER:
        return _page(request, access, groups=groups, current=current)
    form = WorkflowForm(request.POST if posted else None, groups=groups, steps=_steps_in_force(current))
    if posted and form.is_valid():
        try:
            workflow = workflow_update(actor=request.user, brand=brand, steps=form.steps())
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(
                request,
                f"Saved as revision {workflow.revision}; "
                "images already in review finish on the revision they started on.",
            )
            return redirect("approval-workflow", brand_slug=brand.slug)
    return _page(request, access, groups=groups, current=current, workflow_form=form)


@login_required
@require_POST
def reviewer_group_create(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    brand = access.brand
    form = ReviewerGroupForm(request.POST, members=brand_members(brand=brand))
    if form.is_valid():
        try:
            group = reviewer_group_save(
                actor=request.user, brand=brand, name=form.cleaned_data["name"], member_ids=form.cleaned_data["members"]
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Created the reviewer group {group.name}.")
            return redirect(reverse("approval-workflow", args=[brand.slug]) + "#groups")
    return _page(request, access, new_group_form=form)


@login_required
@require_POST
def reviewer_group_update(request, brand_slug, group_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    brand = access.brand
    groups = reviewer_groups_for_brand(brand=brand)
    group = next((group for group in groups if group.pk == group_id), None)
    if group is None:
        raise Http404("No such reviewer group")
    form = ReviewerGroupForm(request.POST, members=brand_members(brand=brand), group=group)
    if form.is_valid():
        try:
            group = reviewer_group_save(
                actor=request.user,
                brand=brand,
                name=form.cleaned_data["name"],
                member_ids=form.cleaned_data["members"],
                group=group,
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(
                request,
                f"Saved the reviewer group {group.name}. Steps naming it are decided by its members as they are now.",
            )
            return redirect(reverse("approval-workflow", args=[brand.slug]) + f"#group-{group.pk}")
    return _page(request, access, groups=groups, group_forms={group.pk: form})


def _steps_in_force(current):
    # Before a brand's first review no revision exists; the default is what will apply.
    return current.steps if current is not None else DEFAULT_STEPS


def step_in_words(step):
    """ "any one of owners or reviewers", "all of the Legal group"."""
    who = step_label({**step, "mode": StepMode.ANY})
    return f"any one of {who}" if step["mode"] == StepMode.ANY else f"all of {who}"


def _page(request, access, *, groups=None, current=None, workflow_form=None, new_group_form=None, group_forms=None):
    """The settings page; the form that was posted (with its errors) replaces its blank twin."""
    brand = access.brand
    is_owner = access.role == Role.OWNER
    groups = reviewer_groups_for_brand(brand=brand) if groups is None else groups
    current = workflow_current(brand=brand) if current is None else current
    group_forms = group_forms or {}
    members = brand_members(brand=brand) if is_owner else []
    if is_owner:
        if workflow_form is None:
            workflow_form = WorkflowForm(groups=groups, steps=_steps_in_force(current))
        new_group_form = new_group_form or ReviewerGroupForm(members=members)
        for group in groups:
            group_forms.setdefault(group.pk, ReviewerGroupForm(members=members, group=group))
    steps = _steps_in_force(current)
    return render(
        request,
        "approvals/workflow.html",
        {
            "brand": brand,
            "role": access.role,
            "is_owner": is_owner,
            "current": current,
            "steps": [(step, step_in_words(step)) for step in steps],
            "groups": [(group, group_forms.get(group.pk) if is_owner else None) for group in groups],
            "workflow_form": workflow_form if is_owner else None,
            "new_group_form": new_group_form if is_owner else None,
            "steps_max": WORKFLOW_STEPS_MAX,
        },
    )
