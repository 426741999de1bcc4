"""Every operation in the API's own OpenAPI schema, called by every kind of
unwelcome caller against a brand ("the victim", Acme) that has data: a
persona, a look, a campaign whose rendered images are in review, a comment.

The walker reads the live schema, so an endpoint added later is covered the day
it appears: the test fails until the walker knows how to fill in its path
parameters and body (PATH_VALUES, BODIES) and which scope it needs (SCOPES).

The rules, exactly (api.permissions checks the scope in DRF's `initial()`,
before a handler looks the brand up):

- (a) another brand's token, (b) an agency's token without access to the
  victim, (b') an agency's token not made for the victim although its agency
  has access: 404 `not_found` on every brand-scoped operation, whatever the
  body; the answer is the same as for a brand that does not exist, so it
  tells nothing. Called on the caller's own brand with the victim's ids (in
  the path or the body): 404, or 400 where an id in the body is checked as a
  field.
- (c) a revoked and (d) an expired token: 401 `invalid_token` on every
  operation, brand-scoped or not.
- (e) a token of the victim brand with only `brands:read`, and (e') one with
  every scope but the one the operation needs: 403 `insufficient_scope` (the
  scope comes first, so an unknown brand slug gets the same 403).
- Nothing changes: no row anywhere is added, removed or altered (the audit
  log included), apart from tokens' last-used time.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import IdempotencyRecord
from approvals.services import comment_add, review_decide, review_release, review_submit
from avatars.services import library_item_create
from brands.models import API_SCOPES, ApiToken, Role
from brands.services import agency_access_grant, agency_create, api_token_create, api_token_revoke, brand_create
from generation.services.directions import directions_compute
from publishing.services import channel_create, post_create
from tests.conftest import user_make
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create

SCHEMA_URL = "/api/v1/schema/?format=json"
PREFIX = "/api/v1"
NO_SUCH_BRAND = "no-such-brand"
RECEIVER = "http://127.0.0.1:9/hooks"
PROBLEM = "application/problem+json"

# The scope each operation needs: the contract, checked for every operation.
SCOPES = {
    ("GET", "/brands/"): "brands:read",
    ("GET", "/models/"): "models:read",
    ("GET", "/brands/{brand_slug}/directions/"): "personas:read",
    ("GET", "/brands/{brand_slug}/personas/"): "personas:read",
    ("POST", "/brands/{brand_slug}/personas/"): "personas:write",
    ("POST", "/brands/{brand_slug}/personas/breed"): "personas:write",
    ("GET", "/brands/{brand_slug}/personas/{persona_id}/"): "personas:read",
    ("PATCH", "/brands/{brand_slug}/personas/{persona_id}/"): "personas:write",
    ("DELETE", "/brands/{brand_slug}/personas/{persona_id}/"): "personas:write",
    ("GET", "/brands/{brand_slug}/personas/{persona_id}/versions/"): "personas:read",
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/edits"): "personas:write",
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/library-applications"): "personas:write",
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/rollbacks"): "personas:write",
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/renders"): "personas:write",
    ("GET", "/brands/{brand_slug}/library/"): "library:read",
    ("POST", "/brands/{brand_slug}/library/"): "library:write",
    ("GET", "/brands/{brand_slug}/campaigns/"): "campaigns:read",
    ("POST", "/brands/{brand_slug}/campaigns/"): "campaigns:write",
    # A cost preview queues nothing: reading campaigns is enough.
    ("POST", "/brands/{brand_slug}/campaigns/estimate"): "campaigns:read",
    ("GET", "/brands/{brand_slug}/campaigns/{campaign_id}/"): "campaigns:read",
    ("POST", "/brands/{brand_slug}/campaigns/{campaign_id}/cancel"): "campaigns:write",
    ("GET", "/brands/{brand_slug}/jobs/{job_id}/"): "jobs:read",
    ("GET", "/brands/{brand_slug}/assets/"): "assets:read",
    ("GET", "/brands/{brand_slug}/assets/{asset_id}/"): "assets:read",
    ("GET", "/brands/{brand_slug}/assets/{asset_id}/files/{kind}"): "assets:read",
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/verify"): "assets:write",
    ("GET", "/brands/{brand_slug}/assets/{asset_id}/review"): "approvals:read",
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/review/submit"): "assets:write",
    ("GET", "/brands/{brand_slug}/assets/{asset_id}/review/decisions"): "approvals:read",
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/review/decisions"): "approvals:decide",
    ("GET", "/brands/{brand_slug}/assets/{asset_id}/comments"): "approvals:read",
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/comments"): "comments:write",
    ("GET", "/brands/{brand_slug}/webhooks/"): "webhooks:read",
    ("POST", "/brands/{brand_slug}/webhooks/"): "webhooks:write",
    ("GET", "/brands/{brand_slug}/webhooks/{endpoint_id}/"): "webhooks:read",
    ("PATCH", "/brands/{brand_slug}/webhooks/{endpoint_id}/"): "webhooks:write",
    ("DELETE", "/brands/{brand_slug}/webhooks/{endpoint_id}/"): "webhooks:write",
    ("POST", "/brands/{brand_slug}/webhooks/{endpoint_id}/secret-rotations"): "webhooks:write",
    ("GET", "/brands/{brand_slug}/webhooks/{endpoint_id}/deliveries/"): "webhooks:read",
    ("POST", "/brands/{brand_slug}/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay"): "webhooks:write",
    ("GET", "/brands/{brand_slug}/tokens/"): "tokens:read",
    ("POST", "/brands/{brand_slug}/tokens/"): "tokens:write",
    ("GET", "/brands/{brand_slug}/tokens/{token_id}/"): "tokens:read",
    ("DELETE", "/brands/{brand_slug}/tokens/{token_id}/"): "tokens:write",
    ("GET", "/brands/{brand_slug}/channels/"): "publishing:read",
    ("GET", "/brands/{brand_slug}/schedules/"): "publishing:read",
    ("GET", "/brands/{brand_slug}/posts/"): "publishing:read",
    ("POST", "/brands/{brand_slug}/posts/"): "publishing:write",
    ("GET", "/brands/{brand_slug}/posts/{post_id}/"): "publishing:read",
    ("POST", "/brands/{brand_slug}/posts/{post_id}/reschedule"): "publishing:write",
    ("POST", "/brands/{brand_slug}/posts/{post_id}/cancel"): "publishing:write",
}

# Operations outside any brand, and what each caller gets there (the victim's
# token with brands:read lists the victim: it is the victim's own).
NOT_BRAND_SCOPED = {
    ("GET", "/brands/"): {
        "other_brand": 200,
        "agency_without_access": 200,
        "agency_token_not_for_victim": 200,
        "revoked": 401,
        "expired": 401,
        "brands_read_only": 200,
    },
    ("GET", "/models/"): {
        "other_brand": 200,
        "agency_without_access": 200,
        "agency_token_not_for_victim": 200,
        "revoked": 401,
        "expired": 401,
        "brands_read_only": 403,
    },
}

# Served under /api/v1/ but not operations of the schema: what a caller with
# no token, and one with a revoked token, gets.
NOT_IN_SCHEMA = {
    "/api/v1/schema/?format=json": {"anonymous": 200, "revoked": 401},
    "/api/v1/docs/": {"anonymous": 200, "revoked": 401},
    "/api/v1/redoc/": {"anonymous": 200, "revoked": 401},
}


@dataclass
class Caller:
    name: str
    raw: str
    # The brand the caller may legitimately act for (None: the token is dead).
    own_brand_slug: str | None = None


# ---------------------------------------------------------------------------- the victim's world


@pytest.fixture
def victim(owner, creator, brand, persona, assets, generator_model, settings):
    """The victim brand's objects, whose ids the walker puts into paths and bodies."""
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True  # the victim's receiver is on 127.0.0.1
    directions_compute(model_id=generator_model.pk)
    layer_group = next(g["name"] for g in generator_model.layer_groups if g["name"] != generator_model.identity_group)
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Coat", layer_group=layer_group, seed=3
    )
    review_submit(actor=creator, brand=brand, asset=assets[0])
    comment = comment_add(actor=owner, brand=brand, asset=assets[0], body="Nice light")
    asset = assets[0]
    endpoint, _secret = webhook_endpoint_create(actor=owner, brand=brand, url=RECEIVER, events=["asset.created"])
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        brand=brand,
        message_id="msg_victim",
        event="asset.created",
        payload={"asset": asset.pk},
        occurred_at=timezone.now(),
        status=WebhookDelivery.Status.DELIVERED,
        attempts=1,
    )
    victim_token, _raw = api_token_create(
        actor=owner, name="victim's CI", scopes=["campaigns:write"], brands=[brand], brand=brand
    )
    # An approved, released image with a post on one channel; a second channel is free.
    approved = assets[2]
    review_submit(actor=creator, brand=brand, asset=approved)
    review_decide(actor=owner, brand=brand, asset_id=approved.pk, action="approve")
    review_release(review_id=approved.review.pk)
    approved.refresh_from_db()
    channel = channel_create(actor=owner, brand=brand, name="Archive", kind="export", config={"prefix": "victim"})
    free_channel = channel_create(actor=owner, brand=brand, name="Backup", kind="export", config={"prefix": "b"})
    post = post_create(
        actor=owner, brand=brand, asset=approved, channel=channel, publish_at=timezone.now() + timedelta(days=1)
    )
    return {
        "brand": brand,
        "model": generator_model,
        "persona": persona,
        "version": persona.current_version,
        "direction": generator_model.directions.model_wide().first(),
        "look": look,
        "layer_group": layer_group,
        "asset": asset,
        "job_id": asset.job_id,
        "campaign_id": asset.job.campaign_item.campaign_id,
        "comment": comment,
        "endpoint": endpoint,
        "delivery": delivery,
        "token": victim_token,
        "approved": approved,
        "channel": channel,
        "free_channel": free_channel,
        "post": post,
    }


# The victim's value of each path parameter the schema may name.
PATH_VALUES = {
    "brand_slug": lambda v: v["brand"].slug,
    "persona_id": lambda v: v["persona"].pk,
    "asset_id": lambda v: v["asset"].pk,
    "campaign_id": lambda v: v["campaign_id"],
    "job_id": lambda v: v["job_id"],
    "kind": lambda v: "master",
    "endpoint_id": lambda v: v["endpoint"].pk,
    "delivery_id": lambda v: v["delivery"].pk,
    "token_id": lambda v: v["token"].pk,
    "post_id": lambda v: v["post"].pk,
}

# A body that would succeed for the victim's owner: a refusal must come from
# who is asking, never from the body.
BODIES = {
    ("POST", "/brands/{brand_slug}/personas/"): lambda v: {
        "model": v["model"].slug,
        "seed": 11,
        "name": "Intruder",
        "handle": "intruder",
    },
    ("POST", "/brands/{brand_slug}/personas/breed"): lambda v: {
        "base": v["persona"].pk,
        "donor": v["persona"].pk,
        "layer_groups": [v["layer_group"]],
        "name": "Bred",
        "handle": "bred",
    },
    ("PATCH", "/brands/{brand_slug}/personas/{persona_id}/"): lambda v: {"name": "Renamed", "archived": True},
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/edits"): lambda v: {
        "direction": v["direction"].pk,
        "strength": 1.0,
    },
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/library-applications"): lambda v: {"item": v["look"].pk},
    ("POST", "/brands/{brand_slug}/personas/{persona_id}/rollbacks"): lambda v: {"version": v["version"].pk},
    ("POST", "/brands/{brand_slug}/library/"): lambda v: {
        "model": v["model"].slug,
        "kind": "pose",
        "name": "Lean",
        "layer_group": v["layer_group"],
        "source_version": v["version"].pk,
    },
    ("POST", "/brands/{brand_slug}/campaigns/"): lambda v: {
        "name": "Hijack",
        "personas": [v["persona"].pk],
        "looks": [v["look"].pk],
        "formats": ["1:1"],
        "variants": 1,
    },
    ("POST", "/brands/{brand_slug}/campaigns/estimate"): lambda v: {
        "name": "Hijack",
        "personas": [v["persona"].pk],
        "looks": [v["look"].pk],
        "formats": ["1:1"],
        "variants": 1,
    },
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/review/decisions"): lambda v: {"action": "approve"},
    ("POST", "/brands/{brand_slug}/assets/{asset_id}/comments"): lambda v: {
        "body": "Intruding",
        "parent": v["comment"].pk,
    },
    ("POST", "/brands/{brand_slug}/webhooks/"): lambda v: {"url": RECEIVER, "events": ["asset.approved"]},
    ("PATCH", "/brands/{brand_slug}/webhooks/{endpoint_id}/"): lambda v: {
        "url": RECEIVER + "/stolen",
        "enabled": False,
    },
    ("POST", "/brands/{brand_slug}/tokens/"): lambda v: {"name": "Backdoor", "scopes": list(API_SCOPES)},
    ("POST", "/brands/{brand_slug}/posts/"): lambda v: {
        "asset": v["approved"].pk,
        "channel": v["free_channel"].pk,
        "publish_at": (timezone.now() + timedelta(days=2)).isoformat(),
    },
    ("POST", "/brands/{brand_slug}/posts/{post_id}/reschedule"): lambda v: {
        "publish_at": (timezone.now() + timedelta(days=3)).isoformat()
    },
}

# Operations whose body names the victim's objects (so that, on the caller's
# own brand, they still must not reach them).
BODY_NAMES_VICTIM_OBJECTS = {
    ("POST", "/brands/{brand_slug}/personas/breed"),
    ("POST", "/brands/{brand_slug}/library/"),
    ("POST", "/brands/{brand_slug}/campaigns/"),
    ("POST", "/brands/{brand_slug}/campaigns/estimate"),
    ("POST", "/brands/{brand_slug}/posts/"),
}


# ---------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # without the /api/v1 prefix
    parameters: tuple
    has_body: bool

    @property
    def key(self):
        return (self.method, self.path)

    @property
    def path_parameters(self):
        return [p["name"] for p in self.parameters if p["in"] == "path"]

    @property
    def brand_scoped(self):
        return "brand_slug" in self.path_parameters

    def __str__(self):
        return f"{self.method} {self.path}"


def schema_operations(client):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200, response.content
    operations = []
    for path, item in response.json()["paths"].items():
        assert path.startswith(PREFIX), path
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method in ("parameters", "summary", "description", "servers"):
                continue
            operations.append(
                Operation(
                    method=method.upper(),
                    path=path.removeprefix(PREFIX),
                    parameters=tuple(shared + operation.get("parameters", [])),
                    has_body="requestBody" in operation,
                )
            )
    return operations


def fill(operation, values, **overrides):
    """The operation's URL with the victim's values (or `overrides`) in its path."""
    path = operation.path
    for name in operation.path_parameters:
        value = overrides[name] if name in overrides else PATH_VALUES[name](values)
        path = path.replace("{" + name + "}", str(value))
    return PREFIX + path


def call(raw, operation, url, body=None, **headers):
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    send = getattr(client, operation.method.lower())
    if operation.method == "GET":
        return send(url, **headers)
    return send(url, body, format="json", **headers)


def answer(response):
    """(status, problem code) of a response; the code only for problem details."""
    code = None
    if response.get("Content-Type") == PROBLEM:
        code = response.json().get("code")
    return response.status_code, code


def snapshot():
    """Every row of every table, tokens' last-used time left out."""
    state = {}
    for model in apps.get_models():
        fields = [
            f.attname for f in model._meta.concrete_fields if not (model is ApiToken and f.attname == "last_used_at")
        ]
        state[model._meta.label] = sorted(model._base_manager.values_list(*fields), key=repr)
    return state


def changed_tables(before, after):
    return sorted(label for label in before if before[label] != after[label])


# ---------------------------------------------------------------------------- the callers


def token(actor, scopes, *, brands, brand=None, agency=None):
    return api_token_create(actor=actor, name="caller", scopes=scopes, brands=brands, brand=brand, agency=agency)


@pytest.fixture
def callers(owner, brand, outsider, other_brand):
    """The unwelcome callers, by name (see the module's docstring)."""
    everything = list(API_SCOPES)
    result = {
        "other_brand": Caller(
            "other_brand", token(outsider, everything, brands=[other_brand], brand=other_brand)[1], "other"
        )
    }

    client_owner = user_make("client-owner")
    client = brand_create(actor=client_owner, name="Client", slug="client")
    agent = user_make("agent")
    stranger_agency = agency_create(actor=None, name="Far Away", slug="far-away", members=[agent])
    agency_access_grant(actor=client_owner, brand=client, agency=stranger_agency, role=Role.OWNER)
    raw = token(agent, everything, brands=[client], agency=stranger_agency)[1]
    result["agency_without_access"] = Caller("agency_without_access", raw, "client")

    # An agency the victim trusts, whose token was made for another client only.
    insider = user_make("insider")
    trusted = agency_create(actor=None, name="Trusted", slug="trusted", members=[insider])
    agency_access_grant(actor=owner, brand=brand, agency=trusted, role=Role.OWNER)
    agency_access_grant(actor=client_owner, brand=client, agency=trusted, role=Role.OWNER)
    raw = token(insider, everything, brands=[client], agency=trusted)[1]
    result["agency_token_not_for_victim"] = Caller("agency_token_not_for_victim", raw, "client")

    revoked, raw = token(owner, everything, brands=[brand], brand=brand)
    api_token_revoke(actor=owner, token=revoked)
    result["revoked"] = Caller("revoked", raw)

    expired, raw = token(owner, everything, brands=[brand], brand=brand)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    result["expired"] = Caller("expired", raw)

    raw = token(owner, ["brands:read"], brands=[brand], brand=brand)[1]
    result["brands_read_only"] = Caller("brands_read_only", raw, "acme")
    return result


OUTSIDERS = ("other_brand", "agency_without_access", "agency_token_not_for_victim")
DEAD = ("revoked", "expired")


def expected(caller_name, operation):
    """(status, code) the caller must get on `operation` of the victim brand."""
    if not operation.brand_scoped:
        status = NOT_BRAND_SCOPED[operation.key][caller_name]
        codes = {401: "invalid_token", 403: "insufficient_scope"}
        return status, codes.get(status)
    if caller_name in OUTSIDERS:
        return 404, "not_found"
    if caller_name in DEAD:
        return 401, "invalid_token"
    if caller_name == "brands_read_only":
        return 403, "insufficient_scope"
    raise AssertionError(caller_name)


# ---------------------------------------------------------------------------- the tests


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    # Primary keys repeat between tests (each rolls back), and so would throttle keys.
    cache.clear()
    yield
    cache.clear()


def test_it_knows_how_to_fill_in_every_operation_of_the_schema(client):
    operations = schema_operations(client)
    keys = {op.key for op in operations}
    assert sorted(keys - set(SCOPES)) == [], (
        "operations the walker does not know: add them to SCOPES (and PATH_VALUES, BODIES), "
        "or remove them from the API if they are unintended"
    )
    assert sorted(set(SCOPES) - keys) == [], "SCOPES names operations the schema no longer has"
    unknown = sorted(
        {(str(op), name) for op in operations for name in op.path_parameters}
        - {(str(op), name) for op in operations for name in op.path_parameters if name in PATH_VALUES}
    )
    assert unknown == [], "path parameters the walker cannot fill in: add them to PATH_VALUES"
    without_body = sorted(str(op) for op in operations if op.has_body and op.key not in BODIES)
    assert without_body == [], "operations with a request body the walker has none for: add them to BODIES"
    assert set(NOT_BRAND_SCOPED) == {op.key for op in operations if not op.brand_scoped}
    assert BODY_NAMES_VICTIM_OBJECTS <= set(BODIES)


def walk(client, victim, callers, check):
    """Call `check(operation, caller)` for every operation and caller; nothing may
    change in the database. Returns the failures, one line each."""
    failures = []
    for operation in schema_operations(client):
        if operation.key not in SCOPES:
            failures.append(f"{operation}: not known to the walker (see SCOPES); walked with the general rules")
        before = snapshot()
        for caller in callers:
            failures.extend(check(operation, caller))
        changed = changed_tables(before, snapshot())
        if changed:
            failures.append(f"{operation}: unwelcome callers changed {', '.join(changed)}")
    return failures


def test_it_answers_every_unwelcome_caller_as_the_rules_say_on_every_operation(client, victim, callers):
    def check(operation, caller):
        body = BODIES[operation.key](victim) if operation.key in BODIES else None
        want = expected(caller.name, operation)
        got = answer(call(caller.raw, operation, fill(operation, victim), body))
        if got != want:
            yield f"{operation} as {caller.name}: got {got}, want {want}"
        if operation.brand_scoped:
            # The same request for a brand that does not exist gets the same answer.
            nowhere = answer(call(caller.raw, operation, fill(operation, victim, brand_slug=NO_SUCH_BRAND), body))
            if nowhere != got:
                yield f"{operation} as {caller.name}: {got} for the victim but {nowhere} for no brand"
        if caller.name in OUTSIDERS and operation.method != "GET":
            # Nor may a body, idempotency key or junk make a difference.
            for extra_body, headers in ((body, {"HTTP_IDEMPOTENCY_KEY": "outsider-1"}), ({}, {}), ([1], {})):
                url = fill(operation, victim)
                varied = answer(call(caller.raw, operation, url, extra_body, **headers))
                nowhere_url = fill(operation, victim, brand_slug=NO_SUCH_BRAND)
                nowhere = answer(call(caller.raw, operation, nowhere_url, extra_body, **headers))
                if varied != nowhere:
                    yield f"{operation} as {caller.name} with {extra_body!r}: {varied}, for no brand {nowhere}"

    failures = walk(client, victim, list(callers.values()), check)
    assert failures == [], "\n".join(failures)
    assert not IdempotencyRecord.objects.exists()


def test_it_refuses_a_victim_token_without_exactly_the_scope_each_operation_needs(client, owner, brand, victim):
    tokens = {
        scope: Caller(scope, token(owner, [s for s in API_SCOPES if s != scope], brands=[brand], brand=brand)[1])
        for scope in sorted(set(SCOPES.values()))
    }

    def check(operation, caller):
        if caller.name != SCOPES.get(operation.key):
            return
        body = BODIES[operation.key](victim) if operation.key in BODIES else None
        got = answer(call(caller.raw, operation, fill(operation, victim), body))
        if got != (403, "insufficient_scope"):
            yield f"{operation} without {caller.name}: got {got}, want (403, 'insufficient_scope')"

    failures = walk(client, victim, list(tokens.values()), check)
    assert failures == [], "\n".join(failures)


def test_it_keeps_the_victims_objects_from_outsiders_acting_on_their_own_brand(client, victim, callers):
    """The IDOR check: the caller's own brand in the path, the victim's ids in the
    rest of the path or in the body: 404 (400 for an id checked as a body field)."""

    def check(operation, caller):
        if caller.name not in OUTSIDERS or not operation.brand_scoped:
            return
        names_victim = set(operation.path_parameters) - {"brand_slug", "kind"}
        if not names_victim and operation.key not in BODY_NAMES_VICTIM_OBJECTS:
            return
        body = BODIES[operation.key](victim) if operation.key in BODIES else None
        url = fill(operation, victim, brand_slug=caller.own_brand_slug)
        response = call(caller.raw, operation, url, body)
        got = answer(response)
        allowed = {(404, "not_found")} if names_victim else {(404, "not_found"), (400, "validation_error")}
        if got not in allowed:
            yield f"{operation} on {caller.own_brand_slug} as {caller.name}: got {got}, want one of {sorted(allowed)}"

    failures = walk(client, victim, [callers[name] for name in OUTSIDERS], check)
    assert failures == [], "\n".join(failures)


def test_it_lists_only_the_callers_own_brands(client, victim, callers):
    for name in OUTSIDERS:
        response = call(callers[name].raw, Operation("GET", "/brands/", (), False), PREFIX + "/brands/")
        assert response.status_code == 200
        assert [b["slug"] for b in response.json()] == [callers[name].own_brand_slug], name


@pytest.mark.parametrize("url", sorted(NOT_IN_SCHEMA))
def test_it_serves_the_schema_and_docs_to_anyone_but_a_dead_token(client, callers, url):
    assert client.get(url).status_code == NOT_IN_SCHEMA[url]["anonymous"]
    dead = APIClient()
    dead.credentials(HTTP_AUTHORIZATION=f"Bearer {callers['revoked'].raw}")
    assert dead.get(url).status_code == NOT_IN_SCHEMA[url]["revoked"]
