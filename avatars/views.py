from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get
from content.selectors import assets_for_persona
from generation.selectors import generation_jobs_for_persona

from .forms import PersonaFromSeedForm
from .selectors import persona_get
from .services import persona_create_from_seed


@login_required
@require_http_methods(["GET", "POST"])
def persona_create(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    if access.role not in CREATE_ROLES:
        raise PermissionDenied
    form = PersonaFromSeedForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            persona = persona_create_from_seed(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Created {persona.name}.")
            return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
    return render(request, "avatars/persona_create.html", {"brand": access.brand, "form": form})


@login_required
def persona_detail(request, brand_slug, persona_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    jobs = generation_jobs_for_persona(brand=access.brand, persona=persona)
    return render(
        request,
        "avatars/persona_detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "persona": persona,
            "assets": assets_for_persona(brand=access.brand, persona=persona),
            "jobs": jobs,
            "can_render": access.role in CREATE_ROLES,
            # Refresh while a render is pending so its image appears by itself.
            "refresh": any(not job.is_finished for job in jobs),
        },
    )
