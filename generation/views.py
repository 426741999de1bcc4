from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get
from common.forms import service_errors_add

from .forms import DirectionTeachForm
from .services.directions import direction_teach


@login_required
@require_http_methods(["GET", "POST"])
def direction_teach_view(request, brand_slug):
    """Teach a direction from labelled examples; it joins the brand's edit and pose choices."""
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=CREATE_ROLES)
    form = DirectionTeachForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            direction = direction_teach(actor=request.user, brand=access.brand, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(
                request, f"Taught {direction.name} ({direction.strength_min:.2f} to {direction.strength_max:.2f})."
            )
            return redirect("brand-dashboard", brand_slug=access.brand.slug)
    return render(request, "generation/direction_teach.html", {"brand": access.brand, "form": form})
