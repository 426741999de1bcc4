from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from avatars.selectors import persona_get
from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get

from .services import generation_job_submit


@login_required
@require_POST
def persona_render(request, brand_slug, persona_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    persona = persona_get(brand=access.brand, persona_id=persona_id)
    if access.role not in CREATE_ROLES:
        raise PermissionDenied
    job = generation_job_submit(actor=request.user, brand=access.brand, persona=persona)
    messages.success(request, f"Render queued (job {job.pk}).")
    return redirect("persona-detail", brand_slug=access.brand.slug, persona_id=persona.pk)
