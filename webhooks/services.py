"""Webhook endpoints: created, changed, rotated and deleted by a brand's owners
(a brand's endpoints) or an agency's members (an agency's), each change audited
in its transaction; replays of a delivery. No request objects: the dashboard and
the API call these alike. Bad input raises ValidationError naming the field,
a role that may not act raises PermissionDenied."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from brands.models import Role
from brands.selectors import brand_role_require

from . import EVENTS
from .delivery import deliveries_send_on_commit
from .models import WebhookDelivery, WebhookEndpoint
from .network import UrlRefused, url_check
from .signing import secret_encrypt, secret_generate

ENDPOINTS_MAX = 20
DESCRIPTION_MAX = 200
URL_MAX = 2000
ROTATION_OVERLAP_MAX = timedelta(days=7)


def endpoint_manage_check(*, actor, brand=None, agency=None):
    """PermissionDenied unless `actor` may change the endpoints of `brand` (its
    owners) or of `agency` (its members)."""
    if brand is not None:
        brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    elif agency is None or not actor.is_authenticated or not agency.members.filter(pk=actor.pk).exists():
        raise PermissionDenied(f"{actor} may not change the webhooks of agency {agency}")


def _url_clean(url):
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": "Enter the URL that receives the webhooks."})
    if len(url) > URL_MAX:
        raise ValidationError({"url": f"At most {URL_MAX} characters."})
    try:
        url_check(url)
    except UrlRefused as exc:
        raise ValidationError({"url": str(exc)}) from None
    return url


def _events_clean(events):
    if isinstance(events, str) or not isinstance(events, list | tuple | set | frozenset):
        raise ValidationError({"events": "Give a list of event names."})
    unknown = sorted(str(name) for name in events if name not in EVENTS)
    if unknown:
        raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}. Known: {', '.join(EVENTS)}."})
    if not events:
        raise ValidationError({"events": "Subscribe to at least one event."})
    return [name for name in EVENTS if name in events]


def _description_clean(description):
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError({"description": f"At most {DESCRIPTION_MAX} characters."})
    return description


def _state(endpoint):
    return {
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


@transaction.atomic
def webhook_endpoint_create(*, actor, brand=None, agency=None, url, events, description=""):
    """A new endpoint of `brand` or of `agency` (exactly one) and its secret,
    returned here once and never again: (endpoint, "whsec_...")."""
    if (brand is None) == (agency is None):
        raise ValidationError("An endpoint belongs to a brand or to an agency, not both or neither.")
    endpoint_manage_check(actor=actor, brand=brand, agency=agency)
    owned = WebhookEndpoint.objects.filter(brand=brand) if brand else WebhookEndpoint.objects.filter(agency=agency)
    if owned.count() >= ENDPOINTS_MAX:
        raise ValidationError(f"At most {ENDPOINTS_MAX} webhook endpoints each; delete one first.")
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        brand=brand,
        agency=agency,
        url=_url_clean(url),
        events=_events_clean(events),
        description=_description_clean(description),
        secret_encrypted=secret_encrypt(secret),
        created_by=actor,
    )
    audit_record(
        actor=actor,
        brand=brand,
        action="webhook_endpoint.created",
        target=endpoint,
        after={**_state(endpoint), "agency": agency.pk if agency else None},
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, actor, endpoint, url=None, events=None, description=None, enabled=None):
    """Change what is given (None leaves a field as it is). Enabling a disabled
    endpoint starts its failure count afresh."""
    endpoint_manage_check(actor=actor, brand=endpoint.brand, agency=endpoint.agency)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = _state(endpoint)
    if url is not None:
        endpoint.url = _url_clean(url)
    if events is not None:
        endpoint.events = _events_clean(events)
    if description is not None:
        endpoint.description = _description_clean(description)
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_at = None if enabled else timezone.now()
        endpoint.disabled_reason = "" if enabled else f"Disabled by {actor.get_username()}."
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
    after = _state(endpoint)
    if after != before:
        endpoint.save()
        audit_record(
            actor=actor,
            brand=endpoint.brand,
            action="webhook_endpoint.updated",
            target=endpoint,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor, endpoint, overlap=timedelta(hours=24)):
    """A new secret for the endpoint, returned once. Messages are signed with the
    new and the previous secret until `overlap` has passed (0: the old one stops
    at once); a previous secret still in its overlap is dropped."""
    endpoint_manage_check(actor=actor, brand=endpoint.brand, agency=endpoint.agency)
    if not timedelta(0) <= overlap <= ROTATION_OVERLAP_MAX:
        raise ValidationError({"overlap": "The overlap must be between 0 and 7 days."})
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = secret_generate()
    if overlap:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + overlap
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = secret_encrypt(secret)
    endpoint.save()
    audit_record(
        actor=actor,
        brand=endpoint.brand,
        action="webhook_endpoint.secret_rotated",
        target=endpoint,
        after={
            "previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()
            if endpoint.previous_secret_expires_at
            else None
        },
    )
    return secret


@transaction.atomic
def webhook_endpoint_delete(*, actor, endpoint):
    """Delete the endpoint and its delivery log; nothing more is sent to it."""
    endpoint_manage_check(actor=actor, brand=endpoint.brand, agency=endpoint.agency)
    audit_record(
        actor=actor,
        brand=endpoint.brand,
        action="webhook_endpoint.deleted",
        target=endpoint,
        before={**_state(endpoint), "agency": endpoint.agency_id},
    )
    endpoint.delete()


@transaction.atomic
def webhook_delivery_replay(*, actor, delivery):
    """Send a delivery's message again, as a new delivery with the same webhook-id
    and body (a fresh timestamp and signature), sent after commit."""
    endpoint = delivery.endpoint
    endpoint_manage_check(actor=actor, brand=endpoint.brand, agency=endpoint.agency)
    if not endpoint.enabled:
        raise ValidationError("The endpoint is disabled: enable it before replaying its deliveries.")
    replay = WebhookDelivery.objects.create(
        endpoint=endpoint,
        brand=delivery.brand,
        message_id=delivery.message_id,
        event=delivery.event,
        payload=delivery.payload,
        occurred_at=delivery.occurred_at,
        next_attempt_at=timezone.now(),
        replay_of=delivery.replay_of or delivery,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        brand=endpoint.brand,
        action="webhook_delivery.replayed",
        target=replay,
        after={"endpoint": endpoint.pk, "message_id": replay.message_id, "replay_of": delivery.pk},
    )
    deliveries_send_on_commit([replay.pk])
    return replay
