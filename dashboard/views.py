from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from avatars.forms import PersonaFromSeedForm
from avatars.selectors import personas_for_brand
from brands.models import CREATE_ROLES
from brands.selectors import brand_access_get, brands_for_user


@login_required
def home(request):
    return render(request, "dashboard/home.html", {"accesses": brands_for_user(user=request.user)})


@login_required
def brand_dashboard(request, brand_slug):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    can_create = access.role in CREATE_ROLES
    return render(
        request,
        "dashboard/brand.html",
        {
            "brand": access.brand,
            "role": access.role,
            "personas": personas_for_brand(brand=access.brand),
            "form": PersonaFromSeedForm() if can_create else None,
        },
    )
