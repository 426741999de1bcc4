"""Delivering events: signed per Standard Webhooks (verified with the
standardwebhooks package, with both secrets during a rotation), retried with
backoff tracked on the row, swept when a message is lost, refused for private
addresses at delivery time, and endpoints disabled after sustained failure."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from audit.models import AuditEvent
from brands.models import Agency, AgencyAccess, Role
from brands.services import brand_create
from common.events import Event
from tests.conftest import member_make, user_make
from webhooks import delivery as delivery_module
from webhooks.delivery import attempt, deliveries_due_send, receive, retry_delay
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.network import post, url_check
from webhooks.services import webhook_delivery_replay, webhook_endpoint_create, webhook_endpoint_rotate_secret
from webhooks.signing import secret_generate

Status = WebhookDelivery.Status


def event(brand, name="asset.created", **payload):
    return Event(name=name, brand_id=brand.pk, payload=payload or {"asset_id": 7, "job_id": 3})


def deliver(brand, name="asset.created", **payload):
    [delivery_id] = receive(event(brand, name, **payload))
    attempt(delivery_id=delivery_id)
    return WebhookDelivery.objects.get(pk=delivery_id)


def make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_it_signs_deliveries_so_that_standardwebhooks_verifies_them(brand, endpoint, secret, receiver):
    delivery = deliver(brand, asset_id=7, job_id=3)

    assert delivery.status == Status.DELIVERED and delivery.attempts == 1 and delivery.last_status_code == 200
    [request] = receiver.requests
    assert request["path"] == "/hooks?source=ps"
    body = Webhook(secret).verify(request["body"], request["headers"])
    assert body["type"] == "asset.created"
    assert body["data"] == {"asset_id": 7, "job_id": 3, "brand": brand.slug}
    assert request["headers"]["webhook-id"] == delivery.message_id
    assert request["headers"]["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_generate()).verify(request["body"], request["headers"])
    tampered = request["body"].replace(b'"asset_id":7', b'"asset_id":8')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request["headers"])


def test_it_signs_with_both_secrets_during_a_rotation_overlap(owner, brand, endpoint, secret, receiver):
    new_secret = webhook_endpoint_rotate_secret(actor=owner, endpoint=endpoint, overlap=timedelta(hours=24))
    deliver(brand)
    request = receiver.requests[-1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    for either in (secret, new_secret):
        Webhook(either).verify(request["body"], request["headers"])

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    deliver(brand)
    request = receiver.requests[-1]
    Webhook(new_secret).verify(request["body"], request["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request["body"], request["headers"])


def test_it_stops_signing_with_the_old_secret_at_once_without_overlap(owner, brand, endpoint, secret, receiver):
    new_secret = webhook_endpoint_rotate_secret(actor=owner, endpoint=endpoint, overlap=timedelta(0))
    deliver(brand)
    request = receiver.requests[-1]
    Webhook(new_secret).verify(request["body"], request["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request["body"], request["headers"])


def test_it_keeps_the_secret_encrypted_at_rest(endpoint, secret):
    stored = bytes(WebhookEndpoint.objects.get(pk=endpoint.pk).secret_encrypted)
    assert secret.encode() not in stored and secret.removeprefix("whsec_").encode() not in stored


def test_it_backs_off_exponentially_then_gives_up(settings, brand, endpoint, receiver, broker):
    assert [retry_delay(n) for n in range(1, 8)] == [30, 120, 480, 1920, 7680, 21600, 21600]
    receiver.statuses = [500] * 8
    [delivery_id] = receive(event(brand))
    for failures in range(1, 8):
        before = timezone.now()
        assert attempt(delivery_id=delivery_id) == Status.PENDING
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert delivery.attempts == failures and delivery.last_status_code == 500
        assert delivery.last_error == "The endpoint answered HTTP 500." and delivery.last_response == "receiver is down"
        wait = (delivery.next_attempt_at - before).total_seconds()
        assert retry_delay(failures) <= wait < retry_delay(failures) + 5
        # Not due yet: a second message for it does nothing.
        assert attempt(delivery_id=delivery_id) is None
        make_due(delivery)
    assert attempt(delivery_id=delivery_id) == Status.FAILED
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.attempts == settings.WEBHOOKS_MAX_ATTEMPTS == 8 and delivery.next_attempt_at is None
    assert len(receiver.requests) == 8
    # Short waits were also handed to the broker (with a countdown); long ones only to the sweep.
    sent = broker.sent("default")
    assert [args for name, args in sent if name == "webhooks.deliver"] == [[delivery_id]] * 2


def test_it_sends_due_and_lost_deliveries_again_from_the_sweep(brand, endpoint, receiver, broker):
    due = receive(event(brand))[0]
    later = receive(event(brand))[0]
    lost = receive(event(brand))[0]
    WebhookDelivery.objects.filter(pk=later).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    WebhookDelivery.objects.filter(pk=lost).update(
        status=Status.SENDING, attempts=1, locked_until=timezone.now() - timedelta(seconds=1)
    )
    broker.purge()

    assert deliveries_due_send() == 2
    assert sorted(args[0] for _, args in broker.sent("default")) == sorted([due, lost])
    assert attempt(delivery_id=lost) == Status.DELIVERED
    assert WebhookDelivery.objects.get(pk=lost).attempts == 2
    # A duplicate message for a delivered one does nothing.
    assert attempt(delivery_id=lost) is None
    assert len(receiver.requests) == 1


def test_it_refuses_at_delivery_time_an_address_that_became_private(settings, brand, endpoint, receiver):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    delivery = deliver(brand)
    assert delivery.status == Status.PENDING and delivery.last_status_code is None
    assert "127.0.0.1 is a loopback address" in delivery.last_error
    assert receiver.requests == []


def test_it_connects_to_the_checked_address_without_resolving_again(receiver):
    """A name that cannot resolve (the .invalid TLD) is POSTed to through the
    address the check produced; the name goes in the Host header."""
    checked = url_check(receiver.url)
    target = checked.__class__(**{**checked.__dict__, "host": "hooks.example.invalid"})
    response = post(target, body=b"{}", headers={"webhook-id": "msg_1"})
    assert response.status == 200
    assert receiver.requests[-1]["headers"]["Host"] == f"hooks.example.invalid:{receiver.port}"


def test_it_resets_the_failure_count_on_success(brand, endpoint, receiver):
    receiver.statuses = [503, 503]
    deliver(brand)
    deliver(brand)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 2
    deliver(brand)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None


def test_it_disables_an_endpoint_after_sustained_failure_and_emails_the_owners(
    settings, owner, brand, endpoint, receiver, mailoutbox, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    owner.email = "owner@example.com"
    owner.save(update_fields=["email"])
    member_make(owner, brand, "cleo", Role.CREATOR)  # not an owner: not emailed
    receiver.statuses = [500] * 10
    deliver(brand)
    deliver(brand)
    waiting = receive(event(brand))[0]
    # Many failures within a day never disable.
    with django_capture_on_commit_callbacks(execute=True):
        attempt(delivery_id=waiting)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled
    make_due(WebhookDelivery.objects.get(pk=waiting))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=1, minutes=1))
    pending = receive(event(brand))[0]

    with django_capture_on_commit_callbacks(execute=True):
        assert attempt(delivery_id=waiting) == Status.PENDING

    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.consecutive_failures == 4
    assert "4 failed attempts in a row" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get(pk=pending).status == Status.FAILED
    [mail] = mailoutbox
    assert mail.to == ["owner@example.com"] and endpoint.url in mail.subject
    assert f"/brands/{brand.slug}/webhooks/{endpoint.pk}/" in mail.body
    assert AuditEvent.objects.filter(action="webhook_endpoint.disabled", target_id=str(endpoint.pk)).count() == 1
    # Nothing is sent to a disabled endpoint: new events make no deliveries.
    assert receive(event(brand)) == []


def test_it_replays_a_delivery_with_the_same_message_id(owner, brand, endpoint, secret, receiver, broker):
    original = deliver(brand)
    broker.purge()
    replay = webhook_delivery_replay(actor=owner, delivery=original)
    assert replay.replay_of == original and replay.message_id == original.message_id
    assert replay.status == Status.PENDING and replay.created_by == owner
    assert AuditEvent.objects.filter(action="webhook_delivery.replayed", target_id=str(replay.pk)).exists()

    assert attempt(delivery_id=replay.pk) == Status.DELIVERED
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == original.message_id
    assert json.loads(first["body"]) == Webhook(secret).verify(second["body"], second["headers"])


def test_it_delivers_only_to_endpoints_subscribed_to_the_event(owner, brand, endpoint, receiver):
    assert receive(event(brand, "asset.approved")) == []
    assert receive(Event(name="review.submitted", brand_id=brand.pk, payload={})) == []
    webhook_endpoint_create(actor=owner, brand=brand, url=receiver.url, events=["asset.approved"])
    assert len(receive(event(brand, "asset.approved"))) == 1


def test_it_keeps_each_brands_events_to_its_own_and_its_agencies_endpoints(
    owner, brand, endpoint, outsider, other_brand, receiver
):
    other_endpoint, _ = webhook_endpoint_create(
        actor=outsider, brand=other_brand, url=receiver.url, events=["asset.created"]
    )
    agency = Agency.objects.create(name="Agents", slug="agents")
    agent = user_make("agent")
    agency.members.add(agent)
    AgencyAccess.objects.create(agency=agency, brand=brand, role=Role.CREATOR)
    agency_endpoint, _ = webhook_endpoint_create(actor=agent, agency=agency, url=receiver.url, events=["asset.created"])
    third = brand_create(actor=owner, name="Third", slug="third")

    ids = receive(event(brand))
    assert set(WebhookDelivery.objects.filter(pk__in=ids).values_list("endpoint", flat=True)) == {
        endpoint.pk,
        agency_endpoint.pk,
    }
    ids = receive(event(other_brand))
    assert set(WebhookDelivery.objects.filter(pk__in=ids).values_list("endpoint", flat=True)) == {other_endpoint.pk}
    assert receive(event(third)) == []


def test_it_makes_one_delivery_per_event_however_often_it_is_handled(brand, endpoint):
    happened = event(brand)
    assert len(receive(happened)) == 1
    assert receive(happened) == []
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_it_fails_a_delivery_whose_endpoint_was_disabled_meanwhile(brand, endpoint, receiver):
    [delivery_id] = receive(event(brand))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    assert attempt(delivery_id=delivery_id) == Status.FAILED
    assert receiver.requests == []


def test_it_counts_an_unreachable_receiver_as_a_failed_attempt(settings, owner, brand, allow_private):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2
    endpoint, _ = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1:9/", events=["job.failed"])
    delivery = deliver(brand, "job.failed", job_id=1)
    assert delivery.status == Status.PENDING and delivery.attempts == 1
    assert delivery.last_error and delivery.last_status_code is None
    assert delivery_module.retry_delay(1) == 30
