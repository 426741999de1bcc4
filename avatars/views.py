import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from brands.models import CREATE_ROLES, Role
from brands.selectors import brand_access_get, layer_group_permissions_for_brand
from brands.services import layer_group_permission_set
from common.forms import service_errors_add
from content.selectors import assets_for_persona
from generation.selectors import directions_for_brand, generation_jobs_for_persona

from .forms import (
    CandidateGridForm,
    LayerGroupPermissionForm,
    LibraryApplyForm,
    LibraryItemForm,
    PersonaBreedForm,
    PersonaEditForm,
    PersonaFromSeedForm,
    VersionPreconditionForm,
)
from .selectors import (
    library_items_for_brand,
    persona_get,
    persona_version_get,
    persona_versions,
    persona_versions_of_brand,
    personas_for_brand,
)
from .services import (
    VersionConflict,
    library_item_create,
    persona_breed,
    persona_candidates_render,
    persona_create_from_seed,
    persona_edit,
    persona_edit_preview,
    persona_library_apply,
    persona_library_preview,
    persona_render_submit,
    persona_rollback,
)


def _persona_to_change(request, brand_slug, persona_id):
    """(access, persona) for a change: 404 outside the brand, 403 below creator."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    if access.role not in CREATE_ROLES:
        raise PermissionDenied
    return access, persona


@login_required
@require_http_methods(["GET", "POST"])
def persona_create(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    # A pick from the candidate grid arrives as a GET with the seed filled in.
    form = PersonaFromSeedForm(request.POST or None, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        try:
            persona = persona_create_from_seed(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Created {persona.name}.")
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return render(request, "avatars/persona_create.html", {"brand": access.brand, "form": form})


@login_required
def persona_candidates(request, brand_slug):
    """The candidate grid: thumbnails of consecutive seeds, each a link to create it."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    form = CandidateGridForm(request.GET or None)
    candidates = []
    if form.is_valid():
        try:
            grid = persona_candidates_render(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            candidates = [(seed, base64.b64encode(png).decode()) for seed, png in grid]
    return render(
        request,
        "avatars/persona_candidates.html",
        {
            "brand": access.brand,
            "form": form,
            "candidates": candidates,
            "query": form.cleaned_data if candidates else None,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def persona_breed_view(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    form = PersonaBreedForm(request.POST or None, personas=personas_for_brand(brand=access.brand))
    if request.method == "POST" and form.is_valid():
        try:
            persona = persona_breed(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Bred {persona.name}.")
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return render(request, "avatars/persona_breed.html", {"brand": access.brand, "form": form})


def _persona_page(request, access, persona, *, edit_form=None, apply_form=None, preview=None, status=200):
    jobs = generation_jobs_for_persona(brand=access.brand, persona=persona)
    can_change = access.role in CREATE_ROLES
    # Changes carry the version they were made against (see VersionConflict).
    current = {"expected_version": persona.current_version_id}
    return render(
        request,
        "avatars/persona_detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "persona": persona,
            "versions": persona_versions(brand=access.brand, persona=persona),
            "assets": assets_for_persona(brand=access.brand, persona=persona),
            # (form name, before, after): a change shown before it is made.
            "preview": preview,
            "jobs": jobs,
            "can_render": can_change,
            "edit_form": edit_form
            or (
                PersonaEditForm(
                    initial=current, directions=directions_for_brand(brand=access.brand, model=persona.model)
                )
                if can_change
                else None
            ),
            "apply_form": apply_form
            or (
                LibraryApplyForm(
                    initial=current, items=library_items_for_brand(brand=access.brand, model=persona.model)
                )
                if can_change
                else None
            ),
            # Refresh while a render is pending so its image appears by itself.
            "refresh": any(not job.is_finished for job in jobs),
        },
        status=status,
    )


@login_required
def persona_detail(request, brand_slug, persona_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    return _persona_page(request, access, persona)


def _persona_change_post(request, brand_slug, persona_id, *, form_class, choices, change, preview, page_form, done):
    """POST of a form that makes a new version of the persona: `change` is the
    service; `choices(brand, persona)` the form's choice querysets. With the
    Preview button, `preview` renders the change beside the current version
    and nothing is written. A bad form, or a change the service refuses, shows
    the persona page again with the form's errors (400, or 409 when the
    persona moved on meanwhile)."""
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    form = form_class(request.POST, **choices(access.brand, persona))
    status = 400
    if form.is_valid() and "preview" in request.POST:
        arguments = {key: value for key, value in form.cleaned_data.items() if key != "expected_version"}
        try:
            before, after = preview(actor=request.user, brand=access.brand, persona=persona, **arguments)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            shown = (page_form, base64.b64encode(before).decode(), base64.b64encode(after).decode())
            return _persona_page(request, access, persona, **{page_form: form}, preview=shown)
    elif form.is_valid():
        data = dict(form.cleaned_data)
        data["expected_version"] = _expected_version(access.brand, persona, data.get("expected_version"))
        try:
            version = change(actor=request.user, brand=access.brand, persona=persona, **data)
        except VersionConflict as exc:
            # Shown again against the new current version, so a second submit is a deliberate choice.
            persona = persona_get(brand=access.brand, persona_id=persona.pk)
            retry = request.POST.copy()
            retry["expected_version"] = exc.current.pk
            form = form_class(retry, **choices(access.brand, persona))
            form.is_valid()
            form.add_error(None, exc)
            status = 409
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, done(form.cleaned_data, version))
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return _persona_page(request, access, persona, **{page_form: form}, status=status)


def _expected_version(brand, persona, version_id):
    return None if version_id is None else persona_version_get(brand=brand, persona=persona, version_id=version_id)


@login_required
@require_POST
def persona_edit_view(request, brand_slug, persona_id):
    return _persona_change_post(
        request, brand_slug, persona_id,
        form_class=PersonaEditForm,
        choices=lambda brand, persona: {"directions": directions_for_brand(brand=brand, model=persona.model)},
        change=persona_edit,
        preview=persona_edit_preview,
        page_form="edit_form",
        done=lambda data, version: f"Made version {version.number}.",
    )  # fmt: skip


@login_required
@require_POST
def persona_apply_view(request, brand_slug, persona_id):
    return _persona_change_post(
        request, brand_slug, persona_id,
        form_class=LibraryApplyForm,
        choices=lambda brand, persona: {"items": library_items_for_brand(brand=brand, model=persona.model)},
        change=persona_library_apply,
        preview=persona_library_preview,
        page_form="apply_form",
        done=lambda data, version: f"Applied {data['item'].name}: version {version.number}.",
    )  # fmt: skip


@login_required
@require_POST
def persona_rollback_view(request, brand_slug, persona_id, version_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    version = persona_version_get(brand=access.brand, persona=persona, version_id=version_id)
    form = VersionPreconditionForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("expected_version must be the id of a version of this persona.")
    expected = _expected_version(access.brand, persona, form.cleaned_data["expected_version"])
    try:
        new = persona_rollback(
            actor=request.user, brand=access.brand, persona=persona, version=version, expected_version=expected
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Rolled back to version {version.number} as version {new.number}.")
    return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)


@login_required
@require_POST
def persona_render(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    job = persona_render_submit(actor=request.user, brand=access.brand, persona=persona)
    messages.success(request, f"Render queued (job {job.pk}).")
    return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)


def _library_page(request, access, *, item_form=None, permission_form=None, status=200):
    """The brand's looks and poses; owners also set layer-group permissions here."""
    if item_form is None and access.role in CREATE_ROLES:
        item_form = _library_item_form(access.brand)
    if permission_form is None and access.role == Role.OWNER:
        permission_form = LayerGroupPermissionForm()
    return render(
        request,
        "avatars/library.html",
        {
            "brand": access.brand,
            "items": library_items_for_brand(brand=access.brand),
            "permissions": layer_group_permissions_for_brand(brand=access.brand),
            "item_form": item_form,
            "permission_form": permission_form,
        },
        status=status,
    )


def _library_item_form(brand, data=None):
    return LibraryItemForm(
        data, versions=persona_versions_of_brand(brand=brand), directions=directions_for_brand(brand=brand)
    )


@login_required
@require_GET
def library(request, brand_slug):
    return _library_page(request, brand_access_get(user=request.user, brand_slug=brand_slug))


def _library_form_post(request, access, *, form, save, page_form):
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("library", brand_slug=access.brand.slug)
    return _library_page(request, access, **{page_form: form}, status=400)


@login_required
@require_POST
def library_item_create_view(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    return _library_form_post(
        request, access,
        form=_library_item_form(access.brand, request.POST),
        save=lambda data: library_item_create(actor=request.user, brand=access.brand, **data),
        page_form="item_form",
    )  # fmt: skip


@login_required
@require_POST
def layer_group_permission_view(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles={Role.OWNER})
    return _library_form_post(
        request, access,
        form=LayerGroupPermissionForm(request.POST),
        save=lambda data: layer_group_permission_set(actor=request.user, brand=access.brand, **data),
        page_form="permission_form",
    )  # fmt: skip
