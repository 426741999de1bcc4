"""Endpoint services: owners (agency members for agency endpoints) only, input
refused with the field named, URLs refused unless public, every change audited
without the secret."""

import socket
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from audit.models import AuditEvent
from brands.models import Agency, AgencyAccess, Role
from tests.conftest import user_make
from webhooks.models import WebhookEndpoint
from webhooks.network import UrlRefused, url_check
from webhooks.selectors import webhook_endpoint_get, webhook_endpoints_for_brand
from webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

PUBLIC = "https://hooks.example.com/in"


def public_resolver(*addresses):
    def resolve(host, port, type=None):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://example.com/x", "Only http:// and https://"),
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
def test_it_refuses_urls_that_are_not_public(owner, brand, url, why):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(actor=owner, brand=brand, url=url, events=["asset.created"])
    assert why in " ".join(refused.value.message_dict["url"])
    assert not WebhookEndpoint.objects.exists()


def test_it_checks_every_address_a_name_resolves_to():
    assert url_check(PUBLIC, resolve=public_resolver("93.184.215.14")).address == "93.184.215.14"
    with pytest.raises(UrlRefused, match="10.0.0.5 is a private address"):
        url_check(PUBLIC, resolve=public_resolver("93.184.215.14", "10.0.0.5"))
    with pytest.raises(UrlRefused, match="does not resolve"):
        url_check("https://hooks.example.invalid/")


def test_it_allows_private_addresses_only_when_the_setting_says_so(settings, owner, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    endpoint, secret = webhook_endpoint_create(
        actor=owner, brand=brand, url="http://127.0.0.1:8080/", events=["asset.created"]
    )
    assert endpoint.enabled and secret.startswith("whsec_")
    with pytest.raises(ValidationError):
        webhook_endpoint_create(actor=owner, brand=brand, url="http://0.0.0.0/", events=["asset.created"])


def test_it_names_the_field_of_bad_input(owner, brand, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    url = "http://127.0.0.1/"
    for events in ([], ["asset.exploded"], "asset.created"):
        with pytest.raises(ValidationError) as refused:
            webhook_endpoint_create(actor=owner, brand=brand, url=url, events=events)
        assert set(refused.value.message_dict) == {"events"}
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(actor=owner, brand=brand, url=url, events=["job.failed"], description="x" * 201)
    assert set(refused.value.message_dict) == {"description"}
    endpoint, _ = webhook_endpoint_create(actor=owner, brand=brand, url=url, events=["job.failed", "asset.created"])
    assert endpoint.events == ["asset.created", "job.failed"]
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_rotate_secret(actor=owner, endpoint=endpoint, overlap=timedelta(days=8))
    assert set(refused.value.message_dict) == {"overlap"}


def test_it_lets_only_owners_change_a_brands_endpoints(settings, owner, member, viewer, outsider, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    for user in (member, viewer, outsider):
        with pytest.raises(PermissionDenied):
            webhook_endpoint_create(actor=user, brand=brand, url="http://127.0.0.1/", events=["job.failed"])
    endpoint, _ = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1/", events=["job.failed"])
    for user in (member, viewer, outsider):
        with pytest.raises(PermissionDenied):
            webhook_endpoint_update(actor=user, endpoint=endpoint, events=["asset.created"])
        with pytest.raises(PermissionDenied):
            webhook_endpoint_rotate_secret(actor=user, endpoint=endpoint)
        with pytest.raises(PermissionDenied):
            webhook_endpoint_delete(actor=user, endpoint=endpoint)


def test_it_lets_agency_members_manage_the_agencys_endpoints(settings, owner, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    agency = Agency.objects.create(name="Agents", slug="agents")
    agent, stranger = user_make("agent"), user_make("stranger")
    agency.members.add(agent)
    AgencyAccess.objects.create(agency=agency, brand=brand, role=Role.CREATOR)
    endpoint, _ = webhook_endpoint_create(actor=agent, agency=agency, url="http://127.0.0.1/", events=["job.failed"])
    assert endpoint.agency == agency and endpoint.brand is None
    for user in (stranger, owner):
        with pytest.raises(PermissionDenied):
            webhook_endpoint_update(actor=user, endpoint=endpoint, description="mine")
    with pytest.raises(ValidationError):
        webhook_endpoint_create(actor=owner, brand=brand, agency=agency, url="http://127.0.0.1/", events=["job.failed"])


def test_it_audits_every_change_without_the_secret(settings, owner, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    endpoint, secret = webhook_endpoint_create(
        actor=owner, brand=brand, url="http://127.0.0.1/a", events=["job.failed"]
    )
    webhook_endpoint_update(actor=owner, endpoint=endpoint, events=["job.failed", "asset.created"], enabled=False)
    new_secret = webhook_endpoint_rotate_secret(actor=owner, endpoint=endpoint)
    webhook_endpoint_delete(actor=owner, endpoint=endpoint)

    rows = list(AuditEvent.objects.filter(target_type="webhooks.webhookendpoint").order_by("seq"))
    assert [row.action for row in rows] == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.deleted",
    ]
    assert all(row.brand == brand and row.actor == owner for row in rows)
    assert rows[1].before == {"events": ["job.failed"], "enabled": True}
    assert rows[1].after == {"events": ["asset.created", "job.failed"], "enabled": False}
    text = repr([(row.before, row.after) for row in rows])
    assert secret not in text and new_secret not in text
    assert not WebhookEndpoint.objects.exists()


def test_it_starts_the_failure_count_afresh_when_enabled_again(settings, owner, brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    endpoint, _ = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1/", events=["job.failed"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="Disabled after 20 failed attempts", consecutive_failures=20
    )
    endpoint.refresh_from_db()
    endpoint = webhook_endpoint_update(actor=owner, endpoint=endpoint, enabled=True)
    assert endpoint.enabled and endpoint.consecutive_failures == 0 and endpoint.disabled_reason == ""


def test_it_reads_endpoints_only_through_their_brand(settings, owner, brand, outsider, other_brand):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    mine, _ = webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1/", events=["job.failed"])
    theirs, _ = webhook_endpoint_create(
        actor=outsider, brand=other_brand, url="http://127.0.0.1/", events=["job.failed"]
    )
    assert webhook_endpoints_for_brand(brand=brand) == [mine]
    assert webhook_endpoint_get(brand=brand, endpoint_id=mine.pk) == mine
    with pytest.raises(Http404):
        webhook_endpoint_get(brand=brand, endpoint_id=theirs.pk)
