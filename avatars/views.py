import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from brands.models import CREATE_ROLES, Role
from brands.selectors import brand_access_get, layer_group_permissions_for_brand
from brands.services import layer_group_permission_set
from common.forms import service_errors_add
from content.selectors import assets_for_persona
from generation.models import GeneratorModel
from generation.selectors import directions_for_brand, generation_jobs_for_persona

from . import pictures
from .forms import (
    CandidateGridForm,
    LayerGroupPermissionForm,
    LibraryApplyForm,
    LibraryItemForm,
    PersonaBreedForm,
    PersonaDeleteForm,
    PersonaEditForm,
    PersonaFromSeedForm,
    PersonaRenameForm,
    VersionPreconditionForm,
)
from .selectors import (
    library_items_for_brand,
    persona_counts,
    persona_get,
    persona_version_get,
    persona_versions,
    persona_versions_of_brand,
    personas_for_brand,
)
from .services import (
    VersionConflict,
    library_item_create,
    persona_archive,
    persona_breed,
    persona_candidates_render,
    persona_create_from_seed,
    persona_delete,
    persona_delete_blockers,
    persona_edit,
    persona_edit_preview,
    persona_library_apply,
    persona_library_preview,
    persona_rename,
    persona_render_submit,
    persona_rollback,
    persona_unarchive,
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
    context = {"brand": access.brand, "form": form, **_class_chooser(form)}
    return render(request, "avatars/persona_create.html", context)


def _class_chooser(form):
    """What the new-persona page's class pictures need: the model the form has
    chosen (the first one when none or a bad one is), the seed and ψ each tile
    draws, the class chosen (for a conditional model always a real class: the
    form's own, else the first) and the table of classes."""
    models = list(GeneratorModel.objects.order_by("name"))
    chosen = str(form["model"].value() or "")
    model = next((m for m in models if str(m.pk) == chosen), models[0] if models else None)
    seed, psi = form["seed"].value(), form["truncation_psi"].value()
    try:
        seed, psi = int(seed), float(psi)
    except (TypeError, ValueError):
        seed, psi = 42, 0.7
    class_index = None
    if model is not None and model.c_dim:
        try:
            class_index = int(form["class_index"].value())
        except (TypeError, ValueError):
            class_index = 0
        if not 0 <= class_index < model.c_dim:
            class_index = 0
    return {
        "models": models,
        "chosen_model": model,
        "tile_seed": seed,
        "tile_psi": psi,
        "chosen_class": class_index,
        "chosen_class_label": pictures.class_label(model.class_names[class_index]) if class_index is not None else "",
        "class_rows": pictures.class_table(model) if model is not None and model.c_dim else [],
    }


@login_required
@require_GET
def class_picture(request, brand_slug, model_id, class_index):
    """PNG of ?seed= at ?truncation_psi= drawn in one class of a model (class
    "none" for an unconditional model): a tile of the new-persona page."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    model = GeneratorModel.objects.filter(pk=model_id).first()
    if model is None or not (class_index == "none" or _digits(class_index)):
        raise Http404("No such model or class")
    try:
        seed = int(request.GET.get("seed", 42))
        psi = float(request.GET.get("truncation_psi", 0.7))
    except ValueError:
        return HttpResponseBadRequest("seed and truncation_psi must be numbers.", content_type="text/plain")
    try:
        png = pictures.class_picture(
            actor=request.user, brand=access.brand, model=model, seed=seed, truncation_psi=psi,
            class_index=None if class_index == "none" else int(class_index),
        )  # fmt: skip
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages), content_type="text/plain; charset=utf-8")
    return _png(png)


def _png(png):
    response = HttpResponse(png, content_type="image/png")
    # What a picture's URL names never changes: the browser may keep it.
    response["Cache-Control"] = f"private, max-age={pictures.PICTURE_SECONDS}"
    return response


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


def _persona_page(
    request, access, persona, *, edit_form=None, apply_form=None, preview=None, rename_form=None, status=200
):
    can_change = access.role in CREATE_ROLES
    directions = directions_for_brand(brand=access.brand, model=persona.model)
    items = library_items_for_brand(brand=access.brand, model=persona.model)
    # Changes carry the version they were made against (see VersionConflict).
    current = {"expected_version": persona.current_version_id}
    if edit_form is None and can_change and directions:
        edit_form = PersonaEditForm(initial=current, directions=directions)
    if apply_form is None and can_change and items:
        apply_form = LibraryApplyForm(initial=current, items=items)
    return render(
        request,
        "avatars/persona_detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "persona": persona,
            "class_label": _current_class_label(persona),
            "versions": persona_versions(brand=access.brand, persona=persona),
            # (form name, before, after): a change shown before it is made.
            "preview": preview,
            "can_render": can_change,
            "edit_form": edit_form,
            "directions": directions,
            "direction": _direction_shown(edit_form, directions),
            "strength": _chosen(edit_form, "strength"),
            "apply_form": apply_form,
            "items": items if can_change else [],
            "chosen_item": _chosen(apply_form, "item"),
            # The Settings section: rename and archive (creators and owners), delete (owners).
            "rename_form": rename_form or (PersonaRenameForm(initial={"name": persona.name}) if can_change else None),
            "can_delete": access.role == Role.OWNER,
            **_live_context(access, persona),
        },
        status=status,
    )


def _current_class_label(persona):
    class_index = persona.current_version.class_index
    if class_index is None or not 0 <= class_index < len(persona.model.class_names):
        return ""
    return pictures.class_label(persona.model.class_names[class_index])


def _chosen(form, field):
    """The value (a string) the form has for `field`: what the user chose, else its initial."""
    if form is None:
        return ""
    value = form[field].value()
    return "" if value is None else str(value)


def _direction_shown(edit_form, directions):
    """The direction whose slider and strip the edit form shows: the chosen one, else the first."""
    if edit_form is None:
        return None
    chosen = _chosen(edit_form, "direction")
    return next((d for d in directions if str(d.pk) == chosen), None) or directions.first()


def _live_context(access, persona):
    """The part of the persona page that changes by itself: its images and render jobs."""
    jobs = generation_jobs_for_persona(brand=access.brand, persona=persona)
    return {
        "brand": access.brand,
        "persona": persona,
        "assets": assets_for_persona(brand=access.brand, persona=persona),
        "jobs": jobs,
        # Asked for again while a render is pending, so its image appears by itself.
        "refresh": any(not job.is_finished for job in jobs),
    }


@login_required
def persona_detail(request, brand_slug, persona_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    return _persona_page(request, access, persona)


@login_required
@require_GET
def persona_live(request, brand_slug, persona_id):
    """The persona page's images and render jobs alone: what its htmx polling swaps in."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    return render(request, "avatars/_persona_live.html", _live_context(access, persona))


@login_required
@require_GET
def persona_version_picture(request, brand_slug, persona_id, version_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    version = persona_version_get(brand=access.brand, persona=persona, version_id=version_id)
    return _png(pictures.version_picture(version=version))


@login_required
@require_GET
def persona_item_picture(request, brand_slug, persona_id, item_id):
    """PNG of the persona's current face with a look or pose of the library tried on;
    a change the services refuse answers 409 with the reason in words."""
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    item = library_items_for_brand(brand=access.brand, model=persona.model).filter(pk=item_id).first()
    if item is None:
        raise Http404("No such look or pose")
    try:
        png = pictures.library_item_picture(actor=request.user, brand=access.brand, persona=persona, item=item)
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=409, content_type="text/plain; charset=utf-8")
    response = _png(png)
    response["Cache-Control"] = "private, no-cache"  # the current face changes with each version
    return response


@login_required
@require_GET
def persona_direction_strip(request, brand_slug, persona_id, direction_id):
    """PNG of the persona's current face along a direction at a few strengths, left to right."""
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    direction = directions_for_brand(brand=access.brand, model=persona.model).filter(pk=direction_id).first()
    if direction is None:
        raise Http404("No such direction")
    try:
        _strengths, png = pictures.direction_strip(
            actor=request.user, brand=access.brand, persona=persona, direction=direction
        )
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=409, content_type="text/plain; charset=utf-8")
    response = _png(png)
    response["Cache-Control"] = "private, no-cache"
    return response


@login_required
@require_GET
def persona_direction_panel(request, brand_slug, persona_id):
    """The edit form's slider and picture strip for ?direction= (htmx swaps it in
    when another direction is chosen)."""
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    directions = directions_for_brand(brand=access.brand, model=persona.model)
    chosen = request.GET.get("direction", "")
    direction = directions.filter(pk=chosen).first() if _digits(chosen) else None
    if direction is None:
        raise Http404("No such direction")
    # The preview of the direction chosen before goes with it (an out-of-band swap).
    context = {"brand": access.brand, "persona": persona, "direction": direction, "clear_preview": bool(request.htmx)}
    return render(request, "avatars/_direction_panel.html", context)


def _digits(value):
    return bool(value) and value.isascii() and value.isdigit() and len(value) < 19


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
            if request.htmx:
                return render(request, "avatars/_preview.html", {"persona": persona, "preview": shown})
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
    if request.htmx and "preview" in request.POST:
        # The live preview's answer: the form's errors, in words, where the preview would be.
        return render(request, "avatars/_preview.html", {"persona": persona, "form": form}, status=status)
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
    try:
        job = persona_render_submit(actor=request.user, brand=access.brand, persona=persona)
    except ValidationError as exc:  # an archived persona, the monthly quota
        if request.htmx:
            return HttpResponse(" ".join(exc.messages), status=409, content_type="text/plain; charset=utf-8")
        messages.error(request, " ".join(exc.messages))
        return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    if request.htmx:
        # The button's htmx answer: the images and jobs, the new one queued, polling until it is done.
        return render(request, "avatars/_persona_live.html", _live_context(access, persona))
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


# --- a persona's settings: rename, archive, delete ----------------------------------


@login_required
@require_POST
def persona_rename_view(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    form = PersonaRenameForm(request.POST)
    if form.is_valid():
        try:
            renamed = persona_rename(actor=request.user, brand=access.brand, persona=persona, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Renamed to {renamed.name}.")
            return redirect(_settings_url(access, persona))
    return _persona_page(request, access, persona, rename_form=form, status=400)


def _settings_url(access, persona):
    return reverse("persona-detail", args=[access.brand.slug, persona.pk]) + "#settings"


@login_required
@require_POST
def persona_archive_view(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    persona = persona_archive(actor=request.user, brand=access.brand, persona=persona)
    messages.success(
        request, f"Archived {persona.name}: hidden from the gallery, not rendered nor used in new campaigns."
    )
    return redirect(_settings_url(access, persona))


@login_required
@require_POST
def persona_unarchive_view(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    persona = persona_unarchive(actor=request.user, brand=access.brand, persona=persona)
    messages.success(request, f"{persona.name} is back: shown in the gallery, rendered and used in campaigns again.")
    return redirect(_settings_url(access, persona))


@login_required
@require_http_methods(["GET", "POST"])
def persona_delete_view(request, brand_slug, persona_id):
    """Owners only: a page saying what deleting removes (or what keeps the persona
    from being deleted), with a confirmation typed by hand."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    if access.role != Role.OWNER:
        raise PermissionDenied
    form = PersonaDeleteForm(request.POST or None, handle=persona.handle)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                persona_delete(actor=request.user, brand=access.brand, persona=persona)
            except ValidationError as exc:
                service_errors_add(form, exc)
                status = 409
            else:
                messages.success(request, f"Deleted {persona.name} (@{persona.handle}) with its versions and images.")
                return redirect("brand-dashboard", brand_slug=access.brand.slug)
    context = {
        "brand": access.brand,
        "persona": persona,
        "form": form,
        "blockers": persona_delete_blockers(brand=access.brand, persona=persona),
        **persona_counts(brand=access.brand, persona=persona),
    }
    return render(request, "avatars/persona_delete.html", context, status=status)
