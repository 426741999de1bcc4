"""schemathesis against the API's live OpenAPI schema (GET /api/v1/schema/
through the WSGI application, in-process): every operation, a handful of
generated requests each, with an owner's token of a brand that has data, so
that most requests reach real handlers rather than 404. Checks: no 5xx, a
documented status code, the documented content type, a body matching the
schema (problem details for every error).

Path parameters are drawn from the brand's real objects (and one id that does
not exist); bodies are schemathesis' own (valid and invalid ones) and the
valid bodies of tests/api/test_outsiders.py with real ids, so that the
creating operations succeed too. Runs are derandomized: the same examples
every run."""

from types import SimpleNamespace

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from avatars.services import persona_create_from_seed
from config.wsgi import application
from tests.api.conftest import token_for
from tests.api.test_outsiders import BODIES, PREFIX, victim  # noqa: F401  (victim: a fixture)

SCHEMA_URL = "/api/v1/schema/?format=json"
EXAMPLES = 12
NO_SUCH_ID = 999_999

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

# What the fuzzer puts in each path parameter: the brand's objects (the
# brand's slug always, so that requests reach handlers) and ids that do not exist.
PATH_CHOICES = {
    "brand_slug": lambda w: [w.brand.slug],
    # The victim's persona (in use: its deletion is refused) and a spare one nothing uses (deleted).
    "persona_id": lambda w: [w.persona.pk, w.spare.pk, NO_SUCH_ID],
    "asset_id": lambda w: [w.in_review.pk, w.draft.pk, NO_SUCH_ID],
    "campaign_id": lambda w: [w.campaign_id, NO_SUCH_ID],
    "job_id": lambda w: [w.job_id, NO_SUCH_ID],
    "kind": lambda w: ["master", "web", "thumbnail", "raw"],
    "endpoint_id": lambda w: [w.victim["endpoint"].pk, NO_SUCH_ID],
    "delivery_id": lambda w: [w.victim["delivery"].pk, NO_SUCH_ID],
    "token_id": lambda w: [w.victim["token"].pk, NO_SUCH_ID],
    "post_id": lambda w: [w.victim["post"].pk, NO_SUCH_ID],
}


@pytest.fixture
def in_process_requests():
    """Keep the test's database connection (and transaction) open across requests
    made through the WSGI handler, as Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    cache.clear()  # throttle counts: token ids repeat from test to test
    yield
    cache.clear()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(victim, assets, memory_broker, owner):  # noqa: F811
    spare = persona_create_from_seed(
        actor=owner, brand=victim["brand"], model=victim["model"], seed=21, name="Spare", handle="spare"
    )
    return SimpleNamespace(
        brand=victim["brand"],
        persona=victim["persona"],
        spare=spare,
        in_review=victim["asset"],
        draft=assets[1],
        campaign_id=victim["campaign_id"],
        job_id=victim["job_id"],
        victim=victim,
    )


def case_strategy(operation, world, authorization):
    names = [parameter.name for parameter in operation.path_parameters]
    unknown = [name for name in names if name not in PATH_CHOICES]
    if unknown:
        pytest.fail(
            f"{operation.label}: add path parameters {unknown} to PATH_CHOICES (and test_outsiders.PATH_VALUES)"
        )
    paths = st.fixed_dictionaries({name: st.sampled_from(PATH_CHOICES[name](world)) for name in names})
    headers = {"Authorization": authorization}

    def cases(path_parameters):
        kinds = [
            operation.as_strategy(mode, path_parameters=path_parameters, headers=headers)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        ]
        key = (operation.method.upper(), operation.path.removeprefix(PREFIX))
        if key in BODIES:
            body = BODIES[key](world.victim)
            kinds.append(operation.as_strategy(path_parameters=path_parameters, headers=headers, body=body))
        return st.one_of(kinds)

    return paths.flatmap(cases)


def operations_fuzz(schema, world, authorization):
    """Every operation, each from the same world (its changes rolled back to a
    savepoint); the failures, one message per operation."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = case_strategy(operation, world, authorization)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(case=strategy)
        def run(case):
            case.call_and_validate(checks=CHECKS)

        with transaction.atomic():
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures are reported
                failures.append(f"{operation.label}:\n{exc}")
            transaction.set_rollback(True)
    return failures


def test_it_answers_every_operation_as_its_schema_says(in_process_requests, owner, world):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, application)
    failures = operations_fuzz(schema, world, f"Bearer {token_for(owner, world.brand)[1]}")
    assert not failures, "\n\n".join(failures)
