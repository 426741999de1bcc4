import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from brands.forms import service_errors_add
from brands.models import CREATE_ROLES, Role
from brands.selectors import brand_access_get, layer_group_permissions_for_brand
from brands.services import layer_group_permission_set
from content.selectors import assets_for_persona
from generation.selectors import directions_for_brand, generation_jobs_for_persona
from generation.services import direction_teach

from .forms import (
    DirectionTeachForm,
    CandidateGridForm,
    LayerGroupPermissionForm,
    LibraryApplyForm,
    LibraryItemForm,
    PersonaBreedForm,
    PersonaEditForm,
    PersonaFromSeedForm,
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
    library_item_create,
    persona_breed,
    persona_candidates_render,
    persona_create_from_seed,
    persona_edit,
    persona_library_apply,
    persona_rollback,
)


def _persona_to_change(request, brand_slug, persona_id):
    """(access, persona) for a change: 404 outside the brand, 403 below creator."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    if access.role not in CREATE_ROLES:
        raise PermissionDenied
    return access, persona


def _creator_access(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    if access.role not in CREATE_ROLES:
        raise PermissionDenied
    return access


@login_required
@require_http_methods(["GET", "POST"])
def persona_create(request, brand_slug):
    access = _creator_access(request, brand_slug)
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
    access = _creator_access(request, brand_slug)
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
        {"brand": access.brand, "form": form, "candidates": candidates, "query": form.cleaned_data if candidates else None},
    )


@login_required
@require_http_methods(["GET", "POST"])
def persona_breed_view(request, brand_slug):
    access = _creator_access(request, brand_slug)
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


def _persona_page(request, access, persona, *, edit_form=None, apply_form=None, status=200):
    jobs = generation_jobs_for_persona(brand=access.brand, persona=persona)
    can_change = access.role in CREATE_ROLES
    return render(
        request,
        "avatars/persona_detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "persona": persona,
            "versions": persona_versions(brand=access.brand, persona=persona),
            "assets": assets_for_persona(brand=access.brand, persona=persona),
            "jobs": jobs,
            "can_render": can_change,
            "edit_form": edit_form or (PersonaEditForm(directions=directions_for_brand(brand=access.brand, model=persona.model)) if can_change else None),
            "apply_form": apply_form or (LibraryApplyForm(items=library_items_for_brand(brand=access.brand, model=persona.model)) if can_change else None),
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


@login_required
@require_POST
def persona_edit_view(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    form = PersonaEditForm(request.POST, directions=directions_for_brand(brand=access.brand, model=persona.model))
    if form.is_valid():
        try:
            version = persona_edit(actor=request.user, brand=access.brand, persona=persona, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Made version {version.number}.")
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return _persona_page(request, access, persona, edit_form=form, status=400)


@login_required
@require_POST
def persona_apply_view(request, brand_slug, persona_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    form = LibraryApplyForm(request.POST, items=library_items_for_brand(brand=access.brand, model=persona.model))
    if form.is_valid():
        try:
            version = persona_library_apply(actor=request.user, brand=access.brand, persona=persona, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Applied {form.cleaned_data['item'].name}: version {version.number}.")
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return _persona_page(request, access, persona, apply_form=form, status=400)


@login_required
@require_POST
def persona_rollback_view(request, brand_slug, persona_id, version_id):
    access, persona = _persona_to_change(request, brand_slug, persona_id)
    version = persona_version_get(brand=access.brand, persona=persona, version_id=version_id)
    try:
        new = persona_rollback(actor=request.user, brand=access.brand, persona=persona, version=version)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Rolled back to version {version.number} as version {new.number}.")
    return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)


@login_required
@require_http_methods(["GET", "POST"])
def library(request, brand_slug):
    """The brand's looks and poses; owners also set layer-group permissions here."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    can_create = access.role in CREATE_ROLES
    is_owner = access.role == Role.OWNER
    versions = persona_versions_of_brand(brand=access.brand)
    directions = directions_for_brand(brand=access.brand)
    item_form = LibraryItemForm(versions=versions, directions=directions) if can_create else None
    permission_form = LayerGroupPermissionForm() if is_owner else None
    if request.method == "POST":
        if "role" in request.POST:
            if not is_owner:
                raise PermissionDenied
            permission_form = LayerGroupPermissionForm(request.POST)
            form, save = permission_form, lambda data: layer_group_permission_set(actor=request.user, brand=access.brand, **data)
        else:
            if not can_create:
                raise PermissionDenied
            item_form = LibraryItemForm(request.POST, versions=versions, directions=directions)
            form, save = item_form, lambda data: library_item_create(actor=request.user, brand=access.brand, **data)
        if form.is_valid():
            try:
                save(form.cleaned_data)
            except ValidationError as exc:
                service_errors_add(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("library", brand_slug=access.brand.slug)
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
    )


@login_required
@require_http_methods(["GET", "POST"])
def direction_teach_view(request, brand_slug):
    """Teach a direction from labelled examples; it joins the brand's edit and pose choices."""
    access = _creator_access(request, brand_slug)
    form = DirectionTeachForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            direction = direction_teach(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, f"Taught {direction.name} ({direction.strength_min:.2f} to {direction.strength_max:.2f}).")
            return redirect("brand-dashboard", brand_slug=access.brand.slug)
    return render(request, "avatars/direction_teach.html", {"brand": access.brand, "form": form})
