"""A brand's webhook endpoints: every member reads them and their delivery log,
owners create, change, rotate, delete and replay. A new secret is shown once, on
the page that answers the request that made it, and never again."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from brands.models import Role
from brands.selectors import brand_access_get
from common.forms import service_errors_add

from .forms import EndpointEditForm, EndpointForm, RotateForm
from .models import WebhookDelivery
from .selectors import (
    webhook_deliveries_for_endpoint,
    webhook_delivery_get,
    webhook_endpoint_get,
    webhook_endpoints_for_brand,
    webhook_endpoints_hearing_brand,
)
from .services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

OWNERS = {Role.OWNER}
DELIVERIES_PER_PAGE = 50


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_list(request, brand_slug):
    posted = request.method == "POST"
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS if posted else None)
    brand = access.brand
    form = EndpointForm(request.POST if posted else None) if access.role == Role.OWNER else None
    created = secret = None
    if posted and form.is_valid():
        try:
            created, secret = webhook_endpoint_create(
                actor=request.user,
                brand=brand,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            form = EndpointForm()
    return render(
        request,
        "webhooks/list.html",
        {
            "brand": brand,
            "role": access.role,
            "endpoints": webhook_endpoints_for_brand(brand=brand),
            "agency_endpoints": webhook_endpoints_hearing_brand(brand=brand),
            "form": form,
            "created": created,
            "secret": secret,
        },
        status=201 if created else 200,
    )


def _detail(request, access, endpoint, *, edit_form=None, secret=None, status=200):
    deliveries = webhook_deliveries_for_endpoint(
        endpoint=endpoint, status=request.GET.get("status") or None, event=request.GET.get("event") or None
    )
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    owner = access.role == Role.OWNER
    if owner and edit_form is None:
        edit_form = EndpointEditForm(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "events": endpoint.events,
                "enabled": endpoint.enabled,
            }
        )
    return render(
        request,
        "webhooks/detail.html",
        {
            "brand": access.brand,
            "role": access.role,
            "endpoint": endpoint,
            "page": page,
            "statuses": WebhookDelivery.Status.choices,
            "edit_form": edit_form if owner else None,
            "rotate_form": RotateForm() if owner else None,
            "secret": secret,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET"])
def endpoint_detail(request, brand_slug, endpoint_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug)
    endpoint = webhook_endpoint_get(brand=access.brand, endpoint_id=endpoint_id)
    return _detail(request, access, endpoint)


@login_required
@require_POST
def endpoint_update(request, brand_slug, endpoint_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    endpoint = webhook_endpoint_get(brand=access.brand, endpoint_id=endpoint_id)
    form = EndpointEditForm(request.POST)
    if form.is_valid():
        try:
            webhook_endpoint_update(actor=request.user, endpoint=endpoint, **form.cleaned_data)
        except ValidationError as exc:
            service_errors_add(form, exc)
        else:
            messages.success(request, "Saved the endpoint.")
            return redirect("webhook-detail", brand_slug=access.brand.slug, endpoint_id=endpoint.pk)
    return _detail(request, access, endpoint, edit_form=form, status=400)


@login_required
@require_POST
def endpoint_rotate(request, brand_slug, endpoint_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    endpoint = webhook_endpoint_get(brand=access.brand, endpoint_id=endpoint_id)
    form = RotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the overlap in hours, from 0 to 168.")
        return redirect("webhook-detail", brand_slug=access.brand.slug, endpoint_id=endpoint.pk)
    secret = webhook_endpoint_rotate_secret(
        actor=request.user, endpoint=endpoint, overlap=timedelta(hours=form.cleaned_data["overlap_hours"])
    )
    endpoint.refresh_from_db()
    return _detail(request, access, endpoint, secret=secret)


@login_required
@require_POST
def endpoint_delete(request, brand_slug, endpoint_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    endpoint = webhook_endpoint_get(brand=access.brand, endpoint_id=endpoint_id)
    url = endpoint.url
    webhook_endpoint_delete(actor=request.user, endpoint=endpoint)
    messages.success(request, f"Deleted the endpoint {url}; nothing more is sent to it.")
    return redirect("webhook-list", brand_slug=access.brand.slug)


@login_required
@require_POST
def delivery_replay(request, brand_slug, endpoint_id, delivery_id):
    access = brand_access_get(user=request.user, brand_slug=brand_slug, roles=OWNERS)
    endpoint = webhook_endpoint_get(brand=access.brand, endpoint_id=endpoint_id)
    delivery = webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    try:
        replay = webhook_delivery_replay(actor=request.user, delivery=delivery)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Sending {replay.event} ({replay.message_id}) again.")
    return redirect("webhook-detail", brand_slug=access.brand.slug, endpoint_id=endpoint.pk)
