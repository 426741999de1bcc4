"""The agency API: tokens and scopes, problem details, idempotency, ETags,
throttling, and the work it drives (personas, campaigns, reviews)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from api.models import IdempotencyRecord
from api.tasks import idempotency_expire
from api.throttling import CallerRateThrottle
from approvals.models import AssetReview, ReviewState
from approvals.services import review_submit
from audit.models import AuditEvent
from avatars.models import PersonaVersion
from brands.models import API_SCOPES, ApiToken
from brands.services import api_token_revoke
from campaigns.models import Campaign
from generation.services.directions import directions_compute
from tests.api.conftest import client_with, token_for

PROBLEM = "application/problem+json"


def url(name, brand=None, **kwargs):
    if brand is not None:
        kwargs["brand_slug"] = brand.slug
    return reverse(name, kwargs=kwargs)


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["code"] == code and body["type"].endswith(code)
    return body


# --------------------------------------------------------------------------- tokens and scopes


def test_it_lists_the_brands_a_token_may_act_for(api, brand, other_brand):
    response = api.get(url("api-brands"))
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "acme", "name": "Acme", "role": "owner", "monthly_image_quota": 2000, "identity_threshold": 0.5}
    ]


def test_it_refuses_a_missing_malformed_or_revoked_token_with_a_problem(client, owner, brand, token):
    assert_problem(client.get(url("api-brands")), 401, "not_authenticated")
    assert_problem(client_with("ps_live_nope").get(url("api-brands")), 401, "invalid_token")
    api_token_revoke(actor=owner, token=token[0])
    response = client_with(token[1]).get(url("api-brands"))
    assert_problem(response, 401, "invalid_token")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_token_without_the_scope(owner, brand, persona):
    raw = token_for(owner, brand, scopes=["personas:read"])[1]
    api = client_with(raw)
    assert api.get(url("api-personas", brand)).status_code == 200
    body = assert_problem(
        api.post(url("api-personas", brand), {"model": "x", "seed": 1, "name": "N", "handle": "n"}, format="json"),
        403,
        "insufficient_scope",
    )
    assert "personas:write" in body["detail"]


def test_it_answers_404_for_a_brand_the_token_was_not_made_for(owner, brand, outsider, other_brand, persona):
    # The owner also joins another brand; a token for Acme still cannot reach it.
    from brands.models import Role
    from brands.services import membership_add

    membership_add(actor=outsider, brand=other_brand, user=owner, role=Role.CREATOR)
    api = client_with(token_for(owner, brand)[1])
    assert_problem(api.get(url("api-personas", other_brand)), 404, "not_found")
    assert [b["slug"] for b in api.get(url("api-brands")).json()] == ["acme"]


def test_it_answers_outsiders_404_on_another_brands_objects(outsider_api, brand, persona):
    assert_problem(outsider_api.get(url("api-personas", brand)), 404, "not_found")
    assert_problem(outsider_api.get(url("api-persona", brand, persona_id=persona.pk)), 404, "not_found")


def test_it_audits_a_change_with_the_tokens_id(api, token, brand, generator_model):
    response = api.post(
        url("api-personas", brand),
        {"model": generator_model.slug, "seed": 5, "name": "Bo", "handle": "bo"},
        format="json",
    )
    assert response.status_code == 201
    event = AuditEvent.objects.filter(action="persona.created").latest("seq")
    assert event.after["via_api_token"] == token[0].pk


# --------------------------------------------------------------------------- problems


def test_it_answers_validation_errors_with_the_fields(api, brand):
    body = assert_problem(api.post(url("api-personas", brand), {"seed": -1}, format="json"), 400, "validation_error")
    fields = {error["field"] for error in body["errors"]}
    assert {"model", "seed", "name", "handle"} <= fields


def test_it_answers_service_refusals_as_problems(api, brand, persona, generator_model):
    body = assert_problem(
        api.post(
            url("api-personas", brand),
            {"model": generator_model.slug, "seed": 5, "name": "Ava 2", "handle": persona.handle},
            format="json",
        ),
        400,
        "validation_error",
    )
    assert body["errors"][0]["field"] == "handle"


def test_it_answers_unknown_api_paths_with_a_problem(api):
    assert_problem(api.get("/api/v1/nothing-here/"), 404, "not_found")


# --------------------------------------------------------------------------- ETags


def test_it_edits_a_persona_only_against_the_version_the_caller_saw(api, brand, persona, generator_model):
    directions_compute(model_id=generator_model.pk)
    direction = generator_model.directions.model_wide().first()
    seen = api.get(url("api-persona", brand, persona_id=persona.pk))
    etag = seen["ETag"]
    edit = url("api-persona-edit", brand, persona_id=persona.pk)
    first = api.post(edit, {"direction": direction.pk, "strength": 1.0}, format="json", HTTP_IF_MATCH=etag)
    assert first.status_code == 201 and first["ETag"] != etag
    stale = api.post(edit, {"direction": direction.pk, "strength": 2.0}, format="json", HTTP_IF_MATCH=etag)
    assert_problem(stale, 412, "precondition_failed")
    assert stale["ETag"] == first["ETag"]
    assert PersonaVersion.objects.for_brand(brand).filter(persona=persona).count() == 2


# --------------------------------------------------------------------------- campaigns and idempotency


def campaign_body(persona, **changes):
    return {"name": "Spring", "personas": [persona.pk], "formats": ["1:1"], "variants": 2} | changes


def test_it_accepts_a_campaign_with_202_and_its_url(api, brand, persona, media_root):
    response = api.post(url("api-campaigns", brand), campaign_body(persona), format="json")
    assert response.status_code == 202
    campaign = Campaign.objects.for_brand(brand).get()
    assert response["Location"] == "http://testserver" + url("api-campaign", brand, campaign_id=campaign.pk)
    assert response.json()["progress"]["total"] == 2
    assert api.get(response["Location"]).json()["progress"]["state"] == "queued"


def test_it_previews_a_campaigns_cost_without_queueing_it(api, brand, persona):
    response = api.post(url("api-campaign-estimate", brand), campaign_body(persona, variants=3), format="json")
    assert response.status_code == 200 and response.json()["images"] == 3
    assert not Campaign.objects.for_brand(brand).exists()


def test_it_replays_an_idempotent_request_with_the_first_response(api, brand, persona):
    headers = {"HTTP_IDEMPOTENCY_KEY": "spring-1"}
    first = api.post(url("api-campaigns", brand), campaign_body(persona), format="json", **headers)
    again = api.post(url("api-campaigns", brand), campaign_body(persona), format="json", **headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json() and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert Campaign.objects.for_brand(brand).count() == 1


def test_it_refuses_a_reused_key_with_another_payload_and_one_in_flight(api, token, brand, persona):
    headers = {"HTTP_IDEMPOTENCY_KEY": "spring-2"}
    api.post(url("api-campaigns", brand), campaign_body(persona), format="json", **headers)
    other = api.post(url("api-campaigns", brand), campaign_body(persona, variants=3), format="json", **headers)
    assert_problem(other, 422, "idempotency_key_reused")
    # The first request with this key is still running (its record has no response yet).
    IdempotencyRecord.objects.filter(caller=f"token:{token[0].pk}", key="spring-2").update(status_code=None)
    busy = api.post(url("api-campaigns", brand), campaign_body(persona), format="json", **headers)
    assert_problem(busy, 409, "idempotency_in_flight")
    assert Campaign.objects.for_brand(brand).count() == 1


def test_it_keeps_no_key_for_a_refused_request(api, brand, persona):
    headers = {"HTTP_IDEMPOTENCY_KEY": "spring-3"}
    refused = api.post(url("api-campaigns", brand), campaign_body(persona, formats=["7:1"]), format="json", **headers)
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.filter(key="spring-3").exists()


def test_it_refuses_a_campaign_over_quota_with_422(api, brand, persona):
    brand.monthly_image_quota = 1
    brand.save()
    body = assert_problem(
        api.post(url("api-campaigns", brand), campaign_body(persona), format="json"), 422, "quota_exceeded"
    )
    assert "1 left" in body["detail"] or "quota" in body["detail"]


# --------------------------------------------------------------------------- reviews


@pytest.fixture
def in_review(creator, brand, assets):
    for asset in assets:
        review_submit(actor=creator, brand=brand, asset=asset)
    return assets


def test_it_decides_with_if_match_and_tells_a_stale_caller_the_current_etag(owner, brand, in_review):
    api = client_with(token_for(owner, brand)[1])
    review_url = url("api-asset-review", brand, asset_id=in_review[0].pk)
    etag = api.get(review_url)["ETag"]
    decisions = url("api-asset-decisions", brand, asset_id=in_review[0].pk)
    decided = api.post(decisions, {"action": "approve"}, format="json", HTTP_IF_MATCH=etag)
    assert decided.status_code == 201 and decided.json()["state"] == "approved"
    stale = api.post(decisions, {"action": "reject", "reason_code": "artefact"}, format="json", HTTP_IF_MATCH=etag)
    assert_problem(stale, 412, "precondition_failed")
    assert stale["ETag"] == decided["ETag"]
    late = api.post(decisions, {"action": "reject", "reason_code": "artefact"}, format="json")
    assert "Already approved by owner" in assert_problem(late, 409, "conflict")["detail"]


def test_it_refuses_approval_of_ones_own_work_with_403(owner, creator, brand, in_review):
    from brands.models import Role
    from brands.services import membership_add

    membership_add(actor=owner, brand=brand, user=creator, role=Role.OWNER)
    api = client_with(token_for(creator, brand)[1])
    decisions = url("api-asset-decisions", brand, asset_id=in_review[0].pk)
    assert_problem(api.post(decisions, {"action": "approve"}, format="json"), 403, "own_work")
    assert AssetReview.objects.for_brand(brand).get(asset=in_review[0]).state == ReviewState.IN_REVIEW


def test_it_needs_a_reason_to_reject_through_the_api(owner, brand, in_review):
    api = client_with(token_for(owner, brand)[1])
    decisions = url("api-asset-decisions", brand, asset_id=in_review[0].pk)
    body = assert_problem(api.post(decisions, {"action": "reject"}, format="json"), 400, "validation_error")
    assert body["errors"][0]["field"] == "reason_code"


# --------------------------------------------------------------------------- throttling and schema


def test_it_throttles_per_token_with_retry_after(api, monkeypatch):
    cache.clear()
    monkeypatch.setattr(CallerRateThrottle, "THROTTLE_RATES", {"caller": "2/min"})
    assert api.get(url("api-brands")).status_code == 200
    assert api.get(url("api-brands")).status_code == 200
    throttled = api.get(url("api-brands"))
    assert_problem(throttled, 429, "throttled")
    assert int(throttled["Retry-After"]) > 0
    cache.clear()


def test_it_serves_its_openapi_schema_and_docs_without_a_cdn(client, api):
    schema = client.get(url("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/brands/{brand_slug}/campaigns/" in schema.json()["paths"]
    docs = client.get(url("api-docs")).content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "/static/drf_spectacular_sidecar/" in docs


# --------------------------------------------------------------------------- webhooks and tokens


def test_it_manages_webhook_endpoints_and_shows_the_secret_once(api, brand, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    created = api.post(
        url("api-webhooks", brand),
        {"url": "http://127.0.0.1:9/hook", "events": ["asset.approved", "campaign.completed"]},
        format="json",
    )
    assert created.status_code == 201
    secret, endpoint = created.json()["secret"], created.json()["endpoint"]
    assert secret.startswith("whsec_")
    detail = api.get(created["Location"]).json()
    assert secret not in str(detail) and set(detail["events"]) == {"asset.approved", "campaign.completed"}
    changed = api.patch(created["Location"], {"events": ["asset.rejected"]}, format="json")
    assert changed.json()["events"] == ["asset.rejected"]
    rotated = api.post(url("api-webhook-rotate", brand, endpoint_id=endpoint["id"]))
    assert rotated.status_code == 201 and rotated.json()["secret"] != secret
    assert rotated.json()["endpoint"]["previous_secret_expires_at"] is not None
    assert api.get(url("api-webhook-deliveries", brand, endpoint_id=endpoint["id"])).json()["results"] == []
    assert api.delete(created["Location"]).status_code == 204
    assert_problem(api.get(created["Location"]), 404, "not_found")


def test_it_refuses_a_webhook_to_a_private_address(api, brand, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    response = api.post(
        url("api-webhooks", brand), {"url": "http://127.0.0.1/hook", "events": ["asset.approved"]}, format="json"
    )
    assert assert_problem(response, 400, "validation_error")["errors"][0]["field"] == "url"


def test_it_makes_and_revokes_tokens_through_the_api(api, brand):
    made = api.post(url("api-brand-tokens", brand), {"name": "CI", "scopes": ["brands:read"]}, format="json")
    assert made.status_code == 201
    raw = made.json()["secret"]
    assert raw.startswith("ps_live_") and made.json()["token"]["prefix"].endswith("…")
    assert client_with(raw).get(url("api-brands")).status_code == 200
    listed = api.get(url("api-brand-tokens", brand)).json()
    assert raw not in str(listed) and {t["name"] for t in listed} == {"test", "CI"}
    assert api.delete(made["Location"]).status_code == 204
    assert_problem(client_with(raw).get(url("api-brands")), 401, "invalid_token")


def test_it_forgets_idempotency_keys_after_a_day(api, brand, persona, settings):
    headers = {"HTTP_IDEMPOTENCY_KEY": "spring-old"}
    api.post(url("api-campaigns", brand), campaign_body(persona), format="json", **headers)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_TTL + 1))
    assert idempotency_expire() == 1
    again = api.post(url("api-campaigns", brand), campaign_body(persona, variants=1), format="json", **headers)
    assert again.status_code == 202 and "Idempotent-Replayed" not in again


def test_it_never_lets_a_token_make_a_stronger_or_longer_lived_token(owner, brand):
    minting = token_for(owner, brand, scopes=["tokens:write", "brands:read"])
    api = client_with(minting[1])
    stronger = api.post(url("api-brand-tokens", brand), {"name": "All", "scopes": list(API_SCOPES)}, format="json")
    assert "lacks" in assert_problem(stronger, 403, "insufficient_scope")["detail"]
    made = api.post(url("api-brand-tokens", brand), {"name": "Read", "scopes": ["brands:read"]}, format="json")
    assert made.status_code == 201
    assert ApiToken.objects.get(pk=made.json()["token"]["id"]).expires_at <= minting[0].expires_at


def test_it_shows_tokens_to_owners_only(owner, brand, reviewer):
    from brands.services import membership_add

    membership_add(actor=owner, brand=brand, user=reviewer, role="owner")
    reviewers_token = token_for(reviewer, brand)
    membership_add(actor=owner, brand=brand, user=reviewer, role="reviewer")
    response = client_with(reviewers_token[1]).get(url("api-brand-tokens", brand))
    assert_problem(response, 403, "permission_denied")


def test_it_keeps_no_secret_in_idempotency_records(api, brand, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    body = {"url": "http://127.0.0.1:9/hook", "events": ["asset.approved"]}
    api.post(url("api-webhooks", brand), body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    api.post(
        url("api-brand-tokens", brand),
        {"name": "x", "scopes": ["brands:read"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="tok-1",
    )
    assert not IdempotencyRecord.objects.exists()


def test_it_keeps_two_callers_campaign_keys_apart(owner, brand, persona, media_root):
    first, second = client_with(token_for(owner, brand)[1]), client_with(token_for(owner, brand)[1])
    a = first.post(url("api-campaigns", brand), campaign_body(persona), format="json", HTTP_IDEMPOTENCY_KEY="k")
    b = second.post(url("api-campaigns", brand), campaign_body(persona), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert a.json()["id"] != b.json()["id"]


def test_it_schedules_lists_moves_and_cancels_posts(owner, creator, brand, assets, media_root):
    from approvals.services import review_decide, review_release
    from publishing.services import channel_create

    review_submit(actor=creator, brand=brand, asset=assets[0])
    review_decide(actor=owner, brand=brand, asset_id=assets[0].pk, action="approve")
    review_release(review_id=AssetReview.objects.for_brand(brand).get(asset=assets[0]).pk)
    channel = channel_create(actor=owner, brand=brand, name="Archive", kind="export", config={"prefix": "a"})
    api = client_with(token_for(owner, brand)[1])
    when = timezone.now() + timedelta(days=1)
    made = api.post(
        url("api-posts", brand),
        {"asset": assets[0].pk, "channel": channel.pk, "publish_at": when.isoformat(), "caption": "Hi"},
        format="json",
    )
    assert made.status_code == 201 and made.json()["state"] == "scheduled"
    window = {"start": (when - timedelta(hours=1)).isoformat(), "end": (when + timedelta(hours=1)).isoformat()}
    assert [p["id"] for p in api.get(url("api-posts", brand), window).json()] == [made.json()["id"]]
    assert_problem(api.get(url("api-posts", brand), {"start": "yesterday"}), 400, "validation_error")
    later = (when + timedelta(days=1)).isoformat()
    moved = api.post(url("api-post-reschedule", brand, post_id=made.json()["id"]), {"publish_at": later}, format="json")
    assert moved.status_code == 200 and moved.json()["publish_at"].startswith(later[:16])
    cancelled = api.post(url("api-post-cancel", brand, post_id=made.json()["id"]))
    assert cancelled.json()["state"] == "cancelled"
    assert AssetReview.objects.for_brand(brand).get(asset=assets[0]).state == ReviewState.APPROVED
    not_approved = api.post(
        url("api-posts", brand),
        {"asset": assets[1].pk, "channel": channel.pk, "publish_at": when.isoformat()},
        format="json",
    )
    assert assert_problem(not_approved, 400, "validation_error")["errors"][0]["field"] == "asset"
