"""From events to signed POSTs.

receive (subscribed to every event in WebhooksConfig.ready, run after the
event's transaction commits): for each enabled endpoint subscribed to the event
(the brand's own, and those of agencies with access to the brand) one delivery
row, then task webhooks.deliver (queue "default") for each after commit.

attempt (the task): claims the row (a compare-and-set, so a message sent twice
is POSTed once), checks the URL against the SSRF guard again, signs and POSTs.
2xx delivers. Anything else (another status, a refusal, a timeout) schedules
the next attempt with backoff on the row: min(BASE * 4**(n-1), MAX) after the
n-th failure, until WEBHOOKS_MAX_ATTEMPTS are used (then failed). Short waits
are also asked of the broker with a countdown; beat's sweep (deliver_due, every
30 s) sends every due delivery and every attempt whose worker died, so a lost
message only delays a delivery.

Disabling: every failed attempt counts against the endpoint, every success
resets it; once WEBHOOKS_DISABLE_AFTER_FAILURES attempts in a row failed and the
first of them is at least WEBHOOKS_DISABLE_AFTER_SECONDS old, the endpoint is
disabled (audited), its waiting deliveries are failed and the brand's owners
(an agency's members) are emailed after commit.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from audit.services import audit_record
from brands.models import AgencyAccess, Brand, Role
from config.celery import app as celery_app

from . import EVENTS
from .conf import setting
from .models import WebhookDelivery, WebhookEndpoint
from .network import UrlRefused, post, url_check
from .signing import SecretUnreadable, body_bytes, endpoint_secrets, signed_headers

log = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
Status = WebhookDelivery.Status
# An attempt holds its delivery this long (well past the POST's timeout).
ATTEMPT_LEASE = timedelta(seconds=120)
# Waits up to this long are also handed to the broker as a countdown; longer
# ones only to the sweep (a broker holding a message for hours redelivers it).
COUNTDOWN_MAX_SECONDS = 300
SWEEP_LIMIT = 500
ERROR_MAX = 1000


def retry_delay(failures):
    """Seconds to wait after the `failures`-th failed attempt of a delivery."""
    base, cap = setting("WEBHOOKS_RETRY_BASE_SECONDS"), setting("WEBHOOKS_RETRY_MAX_SECONDS")
    return min(cap, base * 4 ** (failures - 1))


# --------------------------------------------------------------------------- events -> rows


def endpoints_for_event(*, name, brand_id):
    """Enabled endpoints that hear `name` from the brand: its own and those of
    agencies with access to it."""
    agency_ids = AgencyAccess.objects.filter(brand_id=brand_id).values("agency_id")
    endpoints = WebhookEndpoint.objects.filter(Q(brand_id=brand_id) | Q(agency_id__in=agency_ids), enabled=True)
    # A JSON list's membership is filtered here: SQLite has no JSON contains.
    return [endpoint for endpoint in endpoints.order_by("pk") if name in endpoint.events]


def receive(event):
    """Handler of every event (common.events): one delivery per subscribed endpoint."""
    if event.name not in EVENTS or event.brand_id is None:
        return []
    endpoints = endpoints_for_event(name=event.name, brand_id=event.brand_id)
    if not endpoints:
        return []
    brand = Brand.objects.get(pk=event.brand_id)
    payload = {**event.payload, "brand": brand.slug} if "brand" not in event.payload else event.payload
    message_id = "msg_" + event.id.replace("-", "")
    created = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery, new = WebhookDelivery.objects.get_or_create(
                endpoint=endpoint,
                message_id=message_id,
                replay_of=None,
                defaults={
                    "brand": brand,
                    "event": event.name,
                    "payload": payload,
                    "occurred_at": datetime.fromisoformat(event.occurred_at),
                    "next_attempt_at": timezone.now(),
                },
            )
            if new:
                created.append(delivery.pk)
        deliveries_send_on_commit(created)
    return created


def deliveries_send_on_commit(delivery_ids):
    if delivery_ids:
        transaction.on_commit(lambda: deliveries_send(delivery_ids))


def deliveries_send(delivery_ids, *, countdown=None):
    """Ask a worker for each delivery; a broker that cannot be reached is logged
    (the rows wait, due, for the sweep)."""
    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown, retry=False)
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the sweep sends it
            log.warning("Webhook deliveries wait for the sweep (task queue unreachable: %s)", exc)
            return False
    return True


def deliveries_due_send():
    """Send every due delivery and every attempt whose worker was lost (beat)."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, locked_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    deliveries_send(due)
    return len(due)


# --------------------------------------------------------------------------- one attempt


def _claim(delivery_id, now):
    due = Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, locked_until__lt=now)
    return (
        WebhookDelivery.objects.filter(due, pk=delivery_id).update(
            status=Status.SENDING,
            attempts=F("attempts") + 1,
            locked_until=now + ATTEMPT_LEASE,
            last_attempt_at=now,
        )
        == 1
    )


def attempt(*, delivery_id):
    """One attempt at a delivery, if it is due and no one else holds it. Returns
    the delivery's status afterwards, or None when there was nothing to do."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        return _finish(delivery, status=Status.FAILED, error="Not sent: the endpoint is disabled.", count=False)
    code, excerpt, error = None, "", ""
    try:
        target = url_check(endpoint.url)
        body = body_bytes(delivery.body())
        headers = signed_headers(secrets_=endpoint_secrets(endpoint), message_id=delivery.message_id, body=body)
        response = post(target, body=body, headers=headers)
        code, excerpt = response.status, response.excerpt
        if not 200 <= code < 300:
            error = f"The endpoint answered HTTP {code}."
    except UrlRefused as exc:
        error = f"Not sent: {exc}"
    except SecretUnreadable as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a network failure of any kind is a failed attempt
        error = f"{type(exc).__name__}: {exc}"
    if not error:
        return _finish(delivery, status=Status.DELIVERED, code=code, excerpt=excerpt)
    if delivery.attempts >= setting("WEBHOOKS_MAX_ATTEMPTS"):
        return _finish(delivery, status=Status.FAILED, code=code, excerpt=excerpt, error=error)
    return _finish(delivery, status=Status.PENDING, code=code, excerpt=excerpt, error=error)


def _finish(delivery, *, status, code=None, excerpt="", error="", count=True):
    now = timezone.now()
    delay = retry_delay(delivery.attempts) if status == Status.PENDING else None
    disabled = None
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, attempts=delivery.attempts)
        changed = updated.update(
            status=status,
            locked_until=None,
            next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
            last_status_code=code,
            last_response=excerpt,
            last_error=error[:ERROR_MAX],
            delivered_at=now if status == Status.DELIVERED else None,
        )
        if changed and count:
            disabled = _endpoint_count(delivery.endpoint_id, failed=status != Status.DELIVERED, now=now, error=error)
    if changed and delay is not None and delay <= COUNTDOWN_MAX_SECONDS:
        deliveries_send([delivery.pk], countdown=delay + 1)
    if disabled is not None:
        log.warning("Webhook endpoint %s disabled: %s", disabled.pk, disabled.disabled_reason)
    return status if changed else None


def _endpoint_count(endpoint_id, *, failed, now, error):
    """Record an attempt's outcome on its endpoint; disable it under the rule.
    Returns the endpoint if this disabled it."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        return None
    if not failed:
        if endpoint.consecutive_failures:
            endpoint.consecutive_failures, endpoint.failing_since = 0, None
            endpoint.save(update_fields=["consecutive_failures", "failing_since"])
        return None
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    fields = ["consecutive_failures", "failing_since"]
    sustained = endpoint.consecutive_failures >= setting("WEBHOOKS_DISABLE_AFTER_FAILURES") and (
        now - endpoint.failing_since
    ) >= timedelta(seconds=setting("WEBHOOKS_DISABLE_AFTER_SECONDS"))
    if not (sustained and endpoint.enabled):
        endpoint.save(update_fields=fields)
        return None
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = (
        f"Disabled after {endpoint.consecutive_failures} failed attempts in a row since "
        f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC; the last: {error}"
    )[:300]
    endpoint.save(update_fields=[*fields, "enabled", "disabled_at", "disabled_reason"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(
        status=Status.FAILED, next_attempt_at=None, last_error="Not sent: the endpoint was disabled."
    )
    audit_record(
        actor=None,
        brand=endpoint.brand,
        action="webhook_endpoint.disabled",
        target=endpoint,
        before={"enabled": True},
        after={"enabled": False, "reason": endpoint.disabled_reason},
    )
    transaction.on_commit(lambda: endpoint_disabled_notify(endpoint_id=endpoint.pk))
    return endpoint


def _recipients(endpoint):
    users = get_user_model().objects.exclude(email="")
    if endpoint.brand_id:
        return users.filter(brand_memberships__brand_id=endpoint.brand_id, brand_memberships__role=Role.OWNER)
    return users.filter(agencies=endpoint.agency_id)


def endpoint_disabled_notify(*, endpoint_id):
    """Email the brand's owners (an agency's members) that an endpoint was disabled."""
    endpoint = WebhookEndpoint.objects.select_related("brand", "agency").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.enabled:
        return 0
    owner = endpoint.brand or endpoint.agency
    where = ""
    if endpoint.brand_id:
        path = reverse("webhook-detail", kwargs={"brand_slug": endpoint.brand.slug, "endpoint_id": endpoint.pk})
        where = f"\nSee its deliveries and enable it again: {settings.SITE_URL.rstrip('/')}{path}\n"
    subject = f"[{owner.name}] Webhook endpoint disabled: {endpoint.url}"[:200]
    body = (
        f"The webhook endpoint {endpoint.url} of {owner.name} kept failing, so nothing more is sent to it.\n\n"
        f"{endpoint.disabled_reason}\n{where}"
    )
    messages = [(subject, body, None, [user.email]) for user in _recipients(endpoint).distinct()]
    return send_mass_mail(messages, fail_silently=False)
