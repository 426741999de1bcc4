"""Reviewers deciding the same asset at once, on PostgreSQL: real transactions in
parallel threads, each with its own database connection.

review_decide reads the review under its row lock (SELECT ... FOR UPDATE), so
of two decisions taken at once the second waits for the first to commit, then
sees its outcome: on an "any" step it gets ReviewConflict naming who decided,
what and when, and writes nothing; on an "all" step it counts the first
approval, so no approval is lost. Where a test needs one thread to win, that
thread holds its transaction open after deciding until the other is seen
waiting on a lock in pg_stat_activity, so the race happens on every run rather
than only when the scheduler happens to interleave the threads.
"""

import os
import re
import threading
import time

import pytest
from django.db import connection, transaction

from approvals.models import Action, AssetReview, ReviewDecision, ReviewState
from approvals.services import ReviewConflict, review_decide, review_submit, workflow_update
from audit.models import AuditEvent
from brands.models import Role
from tests.approvals.conftest import campaign_assets, member_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APPROVE, REJECT = Action.APPROVE, Action.REJECT
REASON = {REJECT: {"reason_code": "off_brand"}}
THREAD_TIMEOUT = 120
STAMPEDE = 6
# HH:MM on the day of the decision; a date in front only if midnight passed in between.
WHEN = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d"


@pytest.fixture(autouse=True)
def postgresql():
    """Row locks and concurrent connections are what is tested: SQLite has neither."""
    if connection.vendor != "postgresql":
        reason = f"needs PostgreSQL (DATABASE_URL; bin/test sets it), not {connection.vendor}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def creator(owner, brand):
    return member_make(owner, brand, "cleo", Role.CREATOR)


@pytest.fixture
def ana(owner, brand):
    return member_make(owner, brand, "ana", Role.REVIEWER)


@pytest.fixture
def ben(owner, brand):
    return member_make(owner, brand, "ben", Role.REVIEWER)


@pytest.fixture
def asset(creator, brand, persona, media_root, memory_broker):
    """One rendered asset, submitted for review by its creator. The render tasks the
    campaign sends go to an in-memory broker: nothing reaches a shared Redis."""
    [asset] = campaign_assets(actor=creator, brand=brand, persona=persona, variants=1)
    review_submit(actor=creator, brand=brand, asset=asset)
    return asset


def run_together(work, count):
    """Run work(index, barrier) in `count` threads, each on its own database
    connection (closed when the thread ends). Returns (results, errors), by index."""
    barrier = threading.Barrier(count, timeout=60)
    results, errors = {}, {}

    def thread_main(index):
        try:
            results[index] = work(index, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(i,), name=f"decide-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a deciding thread is stuck (deadlock?)"
    return results, errors


def lock_waiters():
    """Backends of this database waiting for a lock (a row lock, here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count, timeout=30):
    deadline = time.monotonic() + timeout
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"fewer than {count} decision(s) ever waited on the review's row lock"
        time.sleep(0.02)


def decide(actor, brand, asset, action):
    return review_decide(actor=actor, brand=brand, asset_id=asset.pk, action=action, **REASON.get(action, {}))


def race_held(brand, asset, first, second):
    """`first` = (user, action) decides and keeps its transaction open; `second`
    decides meanwhile and must wait on the row lock; `first` commits once a
    supervising thread has seen that wait. Returns (results, errors) by index 0 / 1."""
    decided = threading.Event()
    release = threading.Event()

    def work(index, barrier):
        user, action = (first, second)[index]
        barrier.wait()
        if index == 0:
            with transaction.atomic():
                try:
                    decision = decide(user, brand, asset, action)
                finally:
                    decided.set()  # even on failure, so the others stop waiting
                assert release.wait(60), "the first decision was never let commit"
            return decision
        assert decided.wait(60), "the first decision was never taken"
        return decide(user, brand, asset, action)

    problems = []

    def supervise():
        try:
            assert decided.wait(60), "the first decision was never taken"
            wait_for_lock_waiters(1)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            problems.append(exc)
        finally:
            release.set()
            connection.close()

    supervisor = threading.Thread(target=supervise, name="supervisor")
    supervisor.start()
    try:
        results, errors = run_together(work, 2)
    finally:
        release.set()
        supervisor.join(THREAD_TIMEOUT)
    assert not problems, problems
    return results, errors


def review_of(asset):
    return AssetReview.objects.unscoped().select_related("decided_by").get(asset=asset)


def decisions_of(review):
    return list(ReviewDecision.objects.unscoped().filter(review=review).exclude(action=Action.SUBMIT))


def decision_audits(review):
    actions = [f"review.{action}" for action in (APPROVE, REJECT)]
    return AuditEvent.objects.filter(target_id=str(review.pk), action__in=actions).order_by("seq")


def audit_head():
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def audits_since(seq):
    """(action, actor) of each audit row written after chain position `seq`, in order."""
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", "actor_repr"))


def conflict_of(errors, index):
    exc = errors.get(index)
    assert isinstance(exc, ReviewConflict), f"decision {index} raised {type(exc).__name__}: {exc!r}, not a conflict"
    return exc.message


# --------------------------------------------------------------------------- an "any" step: one decision wins


def test_it_lets_one_of_two_simultaneous_approvals_through_and_tells_the_other_who_won(brand, asset, ana, ben):
    head = audit_head()

    results, errors = race_held(brand, asset, (ana, APPROVE), (ben, APPROVE))

    assert set(results) == {0} and set(errors) == {1}, (results, errors)
    assert re.fullmatch(rf"Already approved by ana at {WHEN}\.", conflict_of(errors, 1))
    review = review_of(asset)
    assert (review.state, review.decided_by.username, review.revision) == (ReviewState.APPROVED, "ana", 2)
    [decision] = decisions_of(review)
    assert (decision.pk, decision.actor.username, decision.action) == (results[0].pk, "ana", APPROVE)
    assert [a.actor_repr for a in decision_audits(review).filter(action="review.approve")] == ["ana"]
    # The loser's transaction wrote nothing; the winner's approval released the files once, after commit.
    assert audits_since(head) == [("review.approve", "ana")]


@pytest.mark.parametrize(
    "first_action, second_action, said",
    [(APPROVE, REJECT, "approved"), (REJECT, APPROVE, "rejected")],
)
def test_it_names_the_winners_decision_to_the_loser_of_an_approve_reject_race(
    brand, asset, ana, ben, first_action, second_action, said
):
    results, errors = race_held(brand, asset, (ana, first_action), (ben, second_action))

    assert set(results) == {0} and set(errors) == {1}, (results, errors)
    assert re.fullmatch(rf"Already {said} by ana at {WHEN}\.", conflict_of(errors, 1))
    review = review_of(asset)
    assert (review.state, review.decided_by.username, review.revision) == (said, "ana", 2)
    assert [(d.actor.username, d.action) for d in decisions_of(review)] == [("ana", first_action)]
    assert [a.action for a in decision_audits(review)] == [f"review.{first_action}"]


def test_it_settles_an_unforced_approve_reject_race_one_way_or_the_other(brand, asset, ana, ben):
    """No thread is held: whichever takes the lock first wins, the other hears of it."""
    plan = [(ana, APPROVE), (ben, REJECT)]

    def work(index, barrier):
        user, action = plan[index]
        barrier.wait()
        return decide(user, brand, asset, action)

    results, errors = run_together(work, 2)

    assert len(results) == 1 and len(errors) == 1, (results, errors)
    [winner] = results
    [loser] = errors
    user, action = plan[winner]
    said = {APPROVE: "approved", REJECT: "rejected"}[action]
    assert re.fullmatch(rf"Already {said} by {user.username} at {WHEN}\.", conflict_of(errors, loser))
    review = review_of(asset)
    assert (review.state, review.decided_by_id, review.revision) == (said, user.pk, 2)
    assert [(d.actor_id, d.action) for d in decisions_of(review)] == [(user.pk, action)]
    assert decision_audits(review).count() == 1


def test_it_lets_exactly_one_of_a_stampede_of_reviewers_approve(owner, brand, asset):
    reviewers = [member_make(owner, brand, f"rev{i}", Role.REVIEWER) for i in range(STAMPEDE)]
    head = audit_head()

    def work(index, barrier):
        barrier.wait()
        with transaction.atomic():
            decision = decide(reviewers[index], brand, asset, APPROVE)
            # Whoever got the lock keeps it until every other reviewer is queued behind it.
            wait_for_lock_waiters(STAMPEDE - 1)
        return decision

    results, errors = run_together(work, STAMPEDE)

    assert len(results) == 1, f"{len(results)} approvals went through: {results}"
    [(winner_index, decision)] = results.items()
    winner = reviewers[winner_index].username
    assert sorted(errors) == sorted(set(range(STAMPEDE)) - {winner_index})
    for index in errors:
        assert re.fullmatch(rf"Already approved by {winner} at {WHEN}\.", conflict_of(errors, index)), index
    review = review_of(asset)
    assert (review.state, review.decided_by.username, review.revision) == (ReviewState.APPROVED, winner, 2)
    assert [d.pk for d in decisions_of(review)] == [decision.pk]
    assert [a.actor_repr for a in decision_audits(review)] == [winner]
    assert audits_since(head) == [("review.approve", winner)]


# --------------------------------------------------------------------------- an "all" step: no approval is lost


def test_it_counts_both_of_two_simultaneous_approvals_of_an_all_step(
    owner, brand, creator, persona, media_root, ana, ben, memory_broker
):
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Panel", "roles": ["reviewer"], "mode": "all"}])
    [asset] = campaign_assets(actor=creator, brand=brand, persona=persona, variants=1)
    review_submit(actor=creator, brand=brand, asset=asset)

    results, errors = race_held(brand, asset, (ana, APPROVE), (ben, APPROVE))

    assert not errors, errors
    review = review_of(asset)
    # The second approval read the first under the lock: it completed the step.
    assert (review.state, review.decided_by.username, review.revision) == (ReviewState.APPROVED, "ben", 3)
    decisions = decisions_of(review)
    assert [(d.actor.username, d.action, d.to_state) for d in decisions] == [
        ("ana", APPROVE, ReviewState.IN_REVIEW),
        ("ben", APPROVE, ReviewState.APPROVED),
    ]
    assert {d.pk for d in decisions} == {r.pk for r in results.values()}
    assert [a.actor_repr for a in decision_audits(review)] == ["ana", "ben"]
