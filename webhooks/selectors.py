"""Webhook reads, always through a brand or an agency (Http404 for ids outside it)."""

from django.db.models import Count, Q
from django.http import Http404

from brands.models import AgencyAccess

from .models import WebhookDelivery, WebhookEndpoint

Status = WebhookDelivery.Status


def _with_counts(endpoints):
    return endpoints.annotate(
        deliveries_failed=Count("deliveries", filter=Q(deliveries__status=Status.FAILED)),
        deliveries_waiting=Count("deliveries", filter=Q(deliveries__status__in=[Status.PENDING, Status.SENDING])),
    ).order_by("-created_at", "-id")


def webhook_endpoints_for_brand(*, brand):
    """The brand's own endpoints, newest first."""
    return list(_with_counts(WebhookEndpoint.objects.filter(brand=brand)))


def webhook_endpoints_for_agency(*, agency):
    return list(_with_counts(WebhookEndpoint.objects.filter(agency=agency)))


def webhook_endpoints_hearing_brand(*, brand):
    """Agency endpoints that receive this brand's events (read-only on the brand's page)."""
    agencies = AgencyAccess.objects.filter(brand=brand).values("agency_id")
    endpoints = WebhookEndpoint.objects.filter(agency_id__in=agencies).select_related("agency")
    return list(endpoints.order_by("agency__name", "pk"))


def webhook_endpoint_get(*, endpoint_id, brand=None, agency=None):
    """One endpoint of the brand (or the agency); Http404 for any other id."""
    if (brand is None) == (agency is None):
        raise Http404("No such webhook endpoint")
    owned = WebhookEndpoint.objects.filter(brand=brand) if brand else WebhookEndpoint.objects.filter(agency=agency)
    endpoint = owned.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint")
    return endpoint


def webhook_deliveries_for_endpoint(*, endpoint, status=None, event=None):
    """The endpoint's deliveries, newest first (a queryset: callers page it)."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    if event:
        deliveries = deliveries.filter(event=event)
    return deliveries.select_related("brand").order_by("-created_at", "-id")


def webhook_delivery_get(*, endpoint, delivery_id):
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).select_related("endpoint").first()
    if delivery is None:
        raise Http404("No such delivery")
    return delivery
