"""Concurrent changes of one persona on PostgreSQL: real transactions in
parallel threads, each with its own database connection.

_version_add locks the persona row and builds the new latent from the version
it reads under that lock, so N concurrent edits make one linear chain that
contains every edit; N edits made against the same version let exactly one
through and refuse the rest with VersionConflict, writing nothing for them.
"""

import threading
from itertools import pairwise

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from audit.models import AuditEvent
from avatars.models import Persona, PersonaVersion
from avatars.services import VersionConflict, persona_edit
from brands.models import Role
from brands.services import membership_add
from generation.models import Direction
from generation.services.directions import directions_compute

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

N = 12
THREAD_TIMEOUT = 120


@pytest.fixture
def editors(services, owner, brand):
    """N creators of the brand, so each change names who made it."""
    users = []
    for index in range(N):
        user = get_user_model().objects.create_user(username=f"editor{index:02d}")  # no password: no hashing
        membership_add(actor=owner, brand=brand, user=user, role=Role.CREATOR)
        users.append(user)
    return users


@pytest.fixture
def directions(services, generator_model):
    """Model-wide directions outside the identity group (no identity guard in play)."""
    directions_compute(model_id=generator_model.pk)
    usable = [
        d for d in Direction.objects.model_wide().filter(model=generator_model).order_by("name")
        if d.layer_group != generator_model.identity_group
    ]  # fmt: skip
    assert len({d.layer_group for d in usable}) >= 2, usable
    return usable


def run_together(work, count):
    """Run work(index) in `count` threads started together (a barrier), each on
    its own database connection, closed when the thread ends. Returns
    (results, errors), each a dict by index."""
    barrier = threading.Barrier(count, timeout=60)
    results, errors = {}, {}

    def thread_main(index):
        try:
            results[index] = work(index, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(index,), name=f"edit-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "an edit thread is stuck (deadlock?)"
    return results, errors


def version_created_audits(brand, persona):
    versions = PersonaVersion.objects.for_brand(brand).filter(persona=persona).values_list("pk", flat=True)
    return AuditEvent.objects.for_brand(brand).filter(
        action="persona.version_created", target_id__in=[str(pk) for pk in versions]
    )


def test_it_chains_concurrent_edits_linearly_and_keeps_every_one(brand, persona, editors, directions):
    first = persona.current_version
    # A different direction (on coarse and fine rows) and a different strength per edit.
    plan = []
    for index in range(N):
        direction = directions[index % len(directions)]
        fraction = (index + 1) / (N + 1)
        strength = (direction.strength_max if index % 2 else direction.strength_min) * fraction
        plan.append((editors[index], direction, float(strength)))

    def edit(index, barrier):
        user, direction, strength = plan[index]
        # Each thread opened the page (loaded the persona at version 1) before any edit landed.
        mine = Persona.objects.for_brand(brand).select_related("model", "brand").get(pk=persona.pk)
        assert mine.current_version_id == first.pk
        barrier.wait()
        return persona_edit(actor=user, brand=brand, persona=mine, direction=direction, strength=strength)

    results, errors = run_together(edit, N)
    assert not errors, errors

    versions = list(PersonaVersion.objects.for_brand(brand).filter(persona=persona).order_by("number"))
    assert [v.number for v in versions] == list(range(1, N + 2)), "version numbers are not dense"
    assert {v.pk for v in versions[1:]} == {v.pk for v in results.values()}
    chain = [(v.number, v.parent.number if v.parent else None) for v in versions]
    assert chain == [(1, None)] + [(k + 1, k) for k in range(1, N + 1)], f"the chain forked: (number, parent) {chain}"
    persona.refresh_from_db()
    assert persona.current_version_id == versions[-1].pk

    by_name = {d.name: d for d in directions}
    model = persona.model
    expected = first.latent_array().astype(np.float64)
    for parent, version in pairwise(versions):
        params = version.params
        rows = model.layer_group_rows(params["layer_group"])
        step = np.zeros_like(expected)
        step[rows] = params["strength"] * by_name[params["direction"]].vector_array().astype(np.float64)
        # Each version is its parent moved by its own edit only.
        np.testing.assert_allclose(
            version.latent_array() - parent.latent_array(), step, atol=1e-4,
            err_msg=f"version {version.number} is not version {parent.number} plus its own edit",
        )  # fmt: skip
        expected += step
    assert sorted((v.created_by.username, v.params["strength"]) for v in versions[1:]) == sorted(
        (user.username, strength) for user, _, strength in plan
    )
    # The last version holds every edit: the first latent plus the sum of strength x direction.
    np.testing.assert_allclose(versions[-1].latent_array(), expected, atol=1e-4, rtol=1e-5)
    assert version_created_audits(brand, persona).count() == N + 1


def test_it_lets_one_of_many_edits_against_the_same_version_through(brand, persona, editors, directions):
    seen = persona.current_version
    direction = directions[0]
    audits_before = AuditEvent.objects.count()

    def edit(index, barrier):
        mine = Persona.objects.for_brand(brand).select_related("model", "brand").get(pk=persona.pk)
        barrier.wait()
        return persona_edit(
            actor=editors[index], brand=brand, persona=mine, direction=direction,
            strength=direction.strength_max * (index + 1) / (N + 1), expected_version=seen,
        )  # fmt: skip

    results, errors = run_together(edit, N)

    assert len(results) == 1, f"{len(results)} edits against version 1 went through: {results}"
    [(winner_index, winner)] = results.items()
    winner_name = editors[winner_index].username
    assert (winner.number, winner.parent_id) == (2, seen.pk)
    assert sorted(errors) == sorted(set(range(N)) - {winner_index})
    for index, exc in errors.items():
        assert isinstance(exc, VersionConflict), f"edit {index} failed with {type(exc).__name__}: {exc}"
        assert exc.code == "version_conflict" and exc.current.pk == winner.pk
        [message] = exc.messages
        assert message.startswith(
            f"This persona changed since you opened it: it is now version 2, by {winner_name} at "
        )
        assert "Nothing was saved" in message

    # Nothing else was written: one new version, one new audit row (the winner's).
    versions = PersonaVersion.objects.for_brand(brand).filter(persona=persona)
    assert sorted(versions.values_list("number", flat=True)) == [1, 2]
    assert version_created_audits(brand, persona).count() == 2
    assert AuditEvent.objects.count() == audits_before + 1
    persona.refresh_from_db()
    assert persona.current_version_id == winner.pk
    step = np.zeros_like(seen.latent_array())
    step[persona.model.layer_group_rows(direction.layer_group)] = winner.params["strength"] * direction.vector_array()
    np.testing.assert_allclose(winner.latent_array() - seen.latent_array(), step, atol=1e-4)
