"""The brand's webhook pages: members read, owners change (the secret shown once,
on the answer to the request that made it), outsiders get 404 everywhere."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from webhooks.delivery import receive
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


@pytest.fixture
def endpoint(owner, brand, allow_private):
    return webhook_endpoint_create(actor=owner, brand=brand, url="http://127.0.0.1:9/in", events=["job.failed"])[0]


@pytest.fixture
def delivery(brand, endpoint):
    from common.events import Event

    [delivery_id] = receive(Event(name="job.failed", brand_id=brand.pk, payload={"job_id": 1}))
    return WebhookDelivery.objects.get(pk=delivery_id)


@pytest.fixture
def pages(brand, endpoint, delivery):
    ids = [brand.slug, endpoint.pk]
    return {
        "webhook-list": ("get", reverse("webhook-list", args=[brand.slug])),
        "webhook-detail": ("get", reverse("webhook-detail", args=ids)),
        "webhook-update": ("post", reverse("webhook-update", args=ids)),
        "webhook-rotate": ("post", reverse("webhook-rotate", args=ids)),
        "webhook-delete": ("post", reverse("webhook-delete", args=ids)),
        "webhook-delivery-replay": ("post", reverse("webhook-delivery-replay", args=[*ids, delivery.pk])),
    }


def test_it_creates_an_endpoint_and_shows_its_secret_once(client, owner, brand, allow_private):
    login(client, owner)
    url = reverse("webhook-list", args=[brand.slug])
    response = client.post(url, {"url": "http://127.0.0.1:9/in", "events": ["asset.created", "job.failed"]})
    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get(brand=brand)
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert endpoint.events == ["asset.created", "job.failed"]
    for page in (url, reverse("webhook-detail", args=[brand.slug, endpoint.pk])):
        assert secret not in client.get(page).content.decode()


def test_it_shows_the_services_refusal_under_the_url(client, owner, brand):
    login(client, owner)
    response = client.post(
        reverse("webhook-list", args=[brand.slug]), {"url": "http://127.0.0.1/", "events": ["job.failed"]}
    )
    assert response.status_code == 200
    assert "loopback" in " ".join(response.context["form"].errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_it_lets_owners_edit_rotate_replay_and_delete(client, owner, brand, endpoint, delivery, broker):
    login(client, owner)
    ids = [brand.slug, endpoint.pk]
    response = client.post(
        reverse("webhook-update", args=ids),
        {"url": endpoint.url, "events": ["asset.approved"], "description": "CRM", "enabled": "on"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["asset.approved"] and endpoint.description == "CRM"

    response = client.post(reverse("webhook-rotate", args=ids), {"overlap_hours": "2"})
    assert response.status_code == 200 and response.context["secret"].startswith("whsec_")
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_expires_at is not None

    response = client.post(reverse("webhook-delivery-replay", args=[*ids, delivery.pk]))
    assert response.status_code == 302
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1
    detail = client.get(reverse("webhook-detail", args=ids)).content.decode()
    assert delivery.message_id in detail and "Replay" in detail

    assert client.post(reverse("webhook-delete", args=ids)).status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_it_lets_members_read_but_not_change(client, member, brand, endpoint, delivery, pages):
    login(client, member)
    detail = client.get(pages["webhook-detail"][1])
    assert detail.status_code == 200 and delivery.message_id in detail.content.decode()
    assert "Replay" not in detail.content.decode() and "Rotate" not in detail.content.decode()
    listing = client.get(pages["webhook-list"][1])
    assert listing.status_code == 200 and endpoint.url in listing.content.decode()
    assert listing.context["form"] is None
    for name, (method, url) in pages.items():
        if method == "post":
            assert client.post(url, {"overlap_hours": "1"}).status_code == 403, name
    assert (
        client.post(pages["webhook-list"][1], {"url": "http://127.0.0.1/", "events": ["job.failed"]}).status_code == 403
    )
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_it_answers_404_to_outsiders_on_every_webhook_page(client, outsider, other_brand, pages):
    login(client, outsider)
    for name, (method, url) in pages.items():
        assert getattr(client, method)(url).status_code == 404, name


def test_it_answers_404_for_another_brands_endpoint_under_ones_own_brand(
    client, outsider, other_brand, brand, endpoint, allow_private
):
    login(client, outsider)
    url = reverse("webhook-detail", args=[other_brand.slug, endpoint.pk])
    assert client.get(url).status_code == 404
    assert client.post(reverse("webhook-delete", args=[other_brand.slug, endpoint.pk])).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
