"""The approval workflow's rules, one test per rule, named after it."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_fsm import TransitionNotAllowed

from approvals.models import Action, AssetReview, ReviewDecision, ReviewState
from approvals.selectors import workflow_current
from approvals.services import (
    DecisionRefused,
    PreconditionFailed,
    ReviewConflict,
    review_decide,
    review_submit,
    reviewer_group_save,
    reviews_decide,
    reviews_release_sweep,
    reviews_submit,
    workflow_update,
)
from audit.models import AuditEvent
from avatars.services import library_item_create, persona_library_apply
from brands.models import Role
from common.events import event_subscribe
from content.services import asset_release_withdraw
from tests.approvals.conftest import campaign_assets, member_make

APPROVE, REJECT, CHANGES = Action.APPROVE, Action.REJECT, Action.REQUEST_CHANGES


def submitted(creator, brand, asset):
    return review_submit(actor=creator, brand=brand, asset=asset)


def decide(actor, brand, asset, action=APPROVE, **reason):
    return review_decide(actor=actor, brand=brand, asset_id=asset.pk, action=action, **reason)


def review_of(asset):
    return AssetReview.objects.unscoped().get(asset=asset)


# --------------------------------------------------------------------------- workflow


def test_it_gives_every_brand_a_default_workflow_any_reviewer_or_owner(creator, brand, assets):
    assert workflow_current(brand=brand) is None
    submitted(creator, brand, assets[0])
    workflow = workflow_current(brand=brand)
    assert workflow.revision == 1
    assert workflow.steps == [
        {"name": "Review", "roles": ["owner", "reviewer"], "group": None, "group_name": "", "mode": "any"}
    ]


def test_it_lets_only_owners_change_the_workflow(owner, creator, reviewer, brand):
    steps = [{"name": "Legal", "roles": ["owner"], "mode": "any"}]
    for someone in (creator, reviewer):
        with pytest.raises(PermissionDenied):
            workflow_update(actor=someone, brand=brand, steps=steps)
    assert workflow_update(actor=owner, brand=brand, steps=steps).revision == 1
    assert AuditEvent.objects.filter(action="workflow.updated", brand=brand).count() == 1


@pytest.mark.parametrize(
    "steps, field",
    [
        ([], "steps"),
        ([{"name": "", "roles": ["owner"]}], "steps"),
        ([{"name": "Look", "roles": ["viewer"]}], "steps"),
        ([{"name": "Look", "roles": []}], "steps"),
        ([{"name": "Look", "roles": ["owner"], "mode": "most"}], "steps"),
        ([{"name": "Look", "roles": [], "group": 999}], "steps"),
    ],
)
def test_it_refuses_a_malformed_workflow_and_keeps_the_current_one(owner, brand, steps, field):
    with pytest.raises(ValidationError) as refused:
        workflow_update(actor=owner, brand=brand, steps=steps)
    assert field in refused.value.message_dict
    assert workflow_current(brand=brand) is None


def test_it_never_changes_a_workflow_revision_once_written(owner, brand):
    workflow = workflow_update(actor=owner, brand=brand, steps=[{"name": "A", "roles": ["owner"]}])
    workflow.steps = []
    with pytest.raises(ValidationError):
        workflow.save()


def test_it_finishes_a_review_on_the_workflow_revision_it_started_on(owner, creator, reviewer, brand, assets):
    submitted(creator, brand, assets[0])
    workflow_update(
        actor=owner,
        brand=brand,
        steps=[{"name": "Review", "roles": ["reviewer"]}, {"name": "Legal", "roles": ["owner"]}],
    )
    decide(reviewer, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.APPROVED  # one step, as when it started
    submitted(creator, brand, assets[1])
    decide(reviewer, brand, assets[1])
    later = review_of(assets[1])
    assert (later.state, later.step_index, later.workflow.revision) == (ReviewState.IN_REVIEW, 1, 2)


# --------------------------------------------------------------------------- states


def test_it_moves_a_submitted_asset_from_draft_to_in_review(creator, brand, assets):
    review = submitted(creator, brand, assets[0])
    assert review.state == ReviewState.IN_REVIEW
    assert (review.content_sha256, review.persona_version_id) == (assets[0].sha256, assets[0].version_id)
    [decision] = ReviewDecision.objects.unscoped().filter(review=review)
    assert (decision.action, decision.from_state, decision.to_state) == (
        Action.SUBMIT,
        ReviewState.DRAFT,
        ReviewState.IN_REVIEW,
    )


@pytest.mark.parametrize(
    "action, state",
    [(APPROVE, ReviewState.APPROVED), (REJECT, ReviewState.REJECTED), (CHANGES, ReviewState.CHANGES_REQUESTED)],
)
def test_it_ends_a_review_in_the_state_the_decision_names(creator, reviewer, brand, assets, action, state):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0], action, reason_code="off_brand")
    review = review_of(assets[0])
    assert (review.state, review.decided_by, review.revision) == (state, reviewer, 2)


def test_it_allows_exactly_the_transitions_in_the_table(creator, reviewer, brand, assets):
    review = submitted(creator, brand, assets[0])
    allowed = {
        ReviewState.DRAFT: {"submit"},
        ReviewState.IN_REVIEW: {"approve", "reject", "request_changes"},
        ReviewState.APPROVED: {"schedule", "lapse"},
        ReviewState.SCHEDULED: {"unschedule", "publish", "lapse"},
        ReviewState.LAPSED: set(),
        ReviewState.PUBLISHED: set(),
        ReviewState.REJECTED: set(),
        ReviewState.CHANGES_REQUESTED: set(),
    }
    declared = {t.name for t in review.get_all_state_transitions()}
    for source, names in allowed.items():
        got = {t.name for t in review.get_all_state_transitions() if t.source == source}
        assert got == names, source
    assert declared == set().union(*allowed.values())


def test_it_refuses_a_transition_the_table_does_not_allow(creator, brand, assets):
    review = submitted(creator, brand, assets[0])
    with pytest.raises(TransitionNotAllowed):
        review.publish()
    with pytest.raises(TransitionNotAllowed):
        review.submit()


def test_it_moves_an_approved_asset_to_scheduled_and_published_and_back(creator, reviewer, brand, assets):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    review = review_of(assets[0])
    review.schedule()
    assert review.state == ReviewState.SCHEDULED
    review.unschedule()
    review.schedule()
    review.publish()
    assert review.state == ReviewState.PUBLISHED


def test_it_protects_the_state_from_direct_assignment(creator, brand, assets):
    review = submitted(creator, brand, assets[0])
    with pytest.raises(AttributeError, match="Direct state modification is not allowed"):
        review.state = ReviewState.APPROVED
    review.refresh_from_db()
    assert review.state == ReviewState.IN_REVIEW


# --------------------------------------------------------------------------- bound to content


def test_it_refuses_to_submit_an_asset_twice(creator, brand, assets):
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused, match="Already submitted"):
        submitted(creator, brand, assets[0])


def test_it_refuses_a_decision_on_content_other_than_what_was_submitted(creator, reviewer, brand, assets):
    submitted(creator, brand, assets[0])
    type(assets[0]).objects.unscoped().filter(pk=assets[0].pk).update(sha256="0" * 64)
    with pytest.raises(DecisionRefused, match="not the one that was submitted") as refused:
        decide(reviewer, brand, assets[0])
    assert refused.value.code == "content_changed"
    assert review_of(assets[0]).state == ReviewState.IN_REVIEW


def test_it_never_carries_an_approval_to_a_new_persona_version(owner, creator, reviewer, brand, persona, assets):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    look = library_item_create(
        actor=owner, brand=brand, model=persona.model, kind="look", name="Denim", layer_group="fine", seed=500
    )
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    persona.refresh_from_db()
    [fresh] = campaign_assets(actor=creator, brand=brand, persona=persona, variants=1)
    assert fresh.version_id != assets[0].version_id
    assert not AssetReview.objects.unscoped().filter(asset=fresh).exists()


# --------------------------------------------------------------------------- who decides


def test_it_refuses_approval_by_the_assets_maker(owner, creator, brand, persona, media_root):
    [asset] = campaign_assets(actor=owner, brand=brand, persona=persona, variants=1)
    submitted(owner, brand, asset)
    with pytest.raises(DecisionRefused, match="You made this image") as refused:
        decide(owner, brand, asset)
    assert refused.value.code == "own_work"


def test_it_refuses_approval_by_the_campaigns_submitter(owner, creator, brand, assets):
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Review", "roles": ["creator", "owner"]}])
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused, match="(made this image|submitted this image's campaign)"):
        decide(creator, brand, assets[0])


def test_it_refuses_members_the_current_step_does_not_name(owner, creator, brand, assets):
    viewer = member_make(owner, brand, "vic", Role.VIEWER)
    other_creator = member_make(owner, brand, "dan", Role.CREATOR)
    submitted(creator, brand, assets[0])
    for someone in (viewer, other_creator):
        with pytest.raises(DecisionRefused, match="decided by owners or reviewers") as refused:
            decide(someone, brand, assets[0])
        assert refused.value.code == "not_a_decider"


def test_it_refuses_outsiders(creator, brand, assets, outsider):
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused):
        decide(outsider, brand, assets[0])


def test_it_lets_a_named_group_decide_its_step(owner, creator, reviewer, brand, assets):
    legal = member_make(owner, brand, "lee", Role.VIEWER)
    group = reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[legal.pk])
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Legal", "roles": [], "group": group.pk}])
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused, match="the Legal group"):
        decide(reviewer, brand, assets[0])
    decide(legal, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.APPROVED


def test_it_refuses_a_reviewer_group_with_outsiders(owner, brand, outsider):
    with pytest.raises(ValidationError):
        reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[outsider.pk])


def test_it_needs_every_decider_of_an_all_step(owner, creator, reviewer, second_reviewer, brand, assets):
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Panel", "roles": ["reviewer"], "mode": "all"}])
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.IN_REVIEW
    with pytest.raises(ReviewConflict, match="already approved step"):
        decide(reviewer, brand, assets[0])
    decide(second_reviewer, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.APPROVED


def test_it_walks_the_steps_in_order(owner, creator, reviewer, brand, assets):
    workflow_update(
        actor=owner,
        brand=brand,
        steps=[{"name": "Review", "roles": ["reviewer"]}, {"name": "Sign-off", "roles": ["owner"]}],
    )
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused, match="Step “Review” is decided by reviewers"):
        decide(owner, brand, assets[0])
    decide(reviewer, brand, assets[0])
    assert review_of(assets[0]).step_index == 1
    with pytest.raises(DecisionRefused, match="Sign-off"):
        decide(reviewer, brand, assets[0])
    decide(owner, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.APPROVED


# --------------------------------------------------------------------------- reasons, conflicts


@pytest.mark.parametrize("action", [REJECT, CHANGES])
def test_it_needs_a_reason_to_reject_or_request_changes(creator, reviewer, brand, assets, action):
    submitted(creator, brand, assets[0])
    with pytest.raises(DecisionRefused, match="Choose a reason"):
        decide(reviewer, brand, assets[0], action)
    with pytest.raises(DecisionRefused, match="needs a few words"):
        decide(reviewer, brand, assets[0], action, reason_code="other", reason_text="  ")
    decide(reviewer, brand, assets[0], action, reason_code="other", reason_text="Hands look wrong")
    [decision] = ReviewDecision.objects.unscoped().filter(action=action)
    assert (decision.reason_code, decision.reason_text) == ("other", "Hands look wrong")


def test_it_tells_the_second_reviewer_who_decided_first_and_when(creator, reviewer, second_reviewer, brand, assets):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    with pytest.raises(ReviewConflict, match=r"^Already approved by ana at \d\d:\d\d\.$"):
        decide(second_reviewer, brand, assets[0], REJECT, reason_code="off_brand")


def test_it_refuses_a_stale_etag_with_the_current_one(creator, reviewer, brand, assets):
    review = submitted(creator, brand, assets[0])
    stale = review.etag
    decide(reviewer, brand, assets[0], CHANGES, reason_code="artefact")
    with pytest.raises(PreconditionFailed) as refused:
        review_decide(actor=reviewer, brand=brand, asset_id=assets[0].pk, action=APPROVE, if_match=stale)
    assert refused.value.current_etag == review_of(assets[0]).etag != stale


def test_it_refuses_a_decision_on_a_step_that_moved_on(owner, creator, reviewer, brand, assets):
    workflow_update(
        actor=owner,
        brand=brand,
        steps=[{"name": "Review", "roles": ["reviewer", "owner"]}, {"name": "Sign", "roles": ["owner"]}],
    )
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    with pytest.raises(ReviewConflict, match="moved on to step “Sign”"):
        review_decide(actor=owner, brand=brand, asset_id=assets[0].pk, action=APPROVE, expected_step=0)


def test_it_decides_a_bulk_selection_item_by_item(owner, creator, reviewer, brand, persona, assets):
    [owners_own] = campaign_assets(actor=owner, brand=brand, persona=persona, variants=1)
    submitted(creator, brand, assets[0])
    submitted(creator, brand, assets[1])
    submitted(owner, brand, owners_own)
    decide(reviewer, brand, assets[1], REJECT, reason_code="artefact")
    ids = [assets[0].pk, assets[1].pk, assets[2].pk, owners_own.pk, 999999]
    results = reviews_decide(actor=owner, brand=brand, asset_ids=ids, action=APPROVE)
    assert [(r.asset_id, r.ok, r.code) for r in results] == [
        (assets[0].pk, True, ""),
        (assets[1].pk, False, "conflict"),
        (assets[2].pk, False, "not_in_review"),
        (owners_own.pk, False, "own_work"),
        (999999, False, "not_in_review"),
    ]
    assert review_of(assets[0]).state == ReviewState.APPROVED


def test_it_submits_a_bulk_selection_item_by_item(creator, brand, assets, other_brand):
    submitted(creator, brand, assets[0])
    results = reviews_submit(actor=creator, brand=brand, asset_ids=[assets[0].pk, assets[1].pk, 424242])
    assert [(r.ok, r.code) for r in results] == [(False, "already_submitted"), (True, ""), (False, "not_found")]


def test_it_lets_only_creators_and_owners_submit(reviewer, brand, assets):
    with pytest.raises(PermissionDenied):
        submitted(reviewer, brand, assets[0])


# --------------------------------------------------------------------------- audit, events, email


def test_it_audits_every_decision_with_who_step_states_reason_and_hash(creator, reviewer, brand, assets):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0], REJECT, reason_code="identity", reason_text="Not her nose")
    event = AuditEvent.objects.get(action="review.reject")
    assert event.actor == reviewer
    assert event.before == {"state": "in_review", "step": 0, "step_name": "Review"}
    assert event.after["state"] == "rejected"
    assert (event.after["reason_code"], event.after["reason_text"]) == ("identity", "Not her nose")
    assert event.after["content_sha256"] == assets[0].sha256
    assert AuditEvent.objects.filter(action="review.submitted", actor=creator).count() == 1


def test_it_emits_events_after_commit_only(
    creator, reviewer, brand, assets, memory_broker, django_capture_on_commit_callbacks
):
    seen = []
    event_subscribe("asset.approved", seen.append)
    submitted(creator, brand, assets[0])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decide(reviewer, brand, assets[0])
    assert seen == []
    for callback in callbacks:
        callback()
    [event] = [e for e in seen if e.payload["asset_id"] == assets[0].pk]
    assert event.payload["state"] == "approved" and event.payload["actor"] == "ana"


def test_it_emails_the_deciders_then_the_makers(
    creator, reviewer, second_reviewer, brand, assets, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submitted(creator, brand, assets[0])
    assert sorted(m.to[0] for m in mailoutbox) == ["ana@example.com", "ben@example.com"]
    assert "waits for your review" in mailoutbox[0].subject
    assert f"/assets/{assets[0].pk}/" in mailoutbox[0].body
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        decide(reviewer, brand, assets[0], CHANGES, reason_code="outfit_pose", reason_text="Wrong jacket")
    [mail] = mailoutbox
    assert mail.to == ["cleo@example.com"]
    assert "changes requested" in mail.subject and "Wrong jacket" in mail.body


def test_it_asks_a_worker_to_release_an_approval_after_commit(
    creator, reviewer, brand, assets, memory_broker, django_capture_on_commit_callbacks
):
    submitted(creator, brand, assets[0])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decide(reviewer, brand, assets[0])
    assert memory_broker.sent("default") == []
    for callback in callbacks:
        callback()
    assert memory_broker.sent("default") == [("approvals.release", [review_of(assets[0]).pk])]


def test_it_sweeps_up_approved_assets_whose_release_was_lost(creator, reviewer, brand, assets, media_root):
    for asset in assets[:2]:
        submitted(creator, brand, asset)
    decide(reviewer, brand, assets[0])  # its release request never ran (no commit in this test)
    decide(reviewer, brand, assets[1], REJECT, reason_code="artefact")
    assert reviews_release_sweep() == 1
    assets[0].refresh_from_db()
    assets[1].refresh_from_db()
    assert assets[0].released and not assets[1].released
    assert assets[0].metadata["release"]["approval"]["approved_by"] == ["ana"]
    assert reviews_release_sweep() == 0


def test_it_never_releases_a_lapsed_approval_again(creator, reviewer, brand, assets, media_root):
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    assert reviews_release_sweep() == 1
    review = review_of(assets[0])
    review.lapse()
    review.save()
    assets[0].refresh_from_db()
    asset_release_withdraw(asset=assets[0], reason="its post's time passed")
    assert reviews_release_sweep() == 0
    assets[0].refresh_from_db()
    assert not assets[0].released and review_of(assets[0]).state == ReviewState.LAPSED


def test_it_keeps_a_reviews_group_deciders_when_the_group_changes(owner, creator, reviewer, brand, assets):
    legal, newcomer = member_make(owner, brand, "lee", Role.VIEWER), member_make(owner, brand, "nia", Role.VIEWER)
    group = reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[legal.pk])
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Legal", "roles": [], "group": group.pk}])
    submitted(creator, brand, assets[0])
    reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[newcomer.pk], group=group)
    assert workflow_current(brand=brand).revision == 2  # the group's change is a new revision
    with pytest.raises(DecisionRefused, match="Legal group"):
        decide(newcomer, brand, assets[0])  # not a decider on the revision this review started on
    decide(legal, brand, assets[0])
    assert review_of(assets[0]).state == ReviewState.APPROVED
    submitted(creator, brand, assets[1])
    decide(newcomer, brand, assets[1])
    assert review_of(assets[1]).state == ReviewState.APPROVED


def test_it_announces_the_approved_files_once_they_exist(
    creator, reviewer, brand, assets, media_root, django_capture_on_commit_callbacks
):
    seen = []
    event_subscribe("asset.released", seen.append)
    submitted(creator, brand, assets[0])
    decide(reviewer, brand, assets[0])
    with django_capture_on_commit_callbacks(execute=True):
        reviews_release_sweep()
    [event] = [e for e in seen if e.payload["asset_id"] == assets[0].pk]
    assets[0].refresh_from_db()
    assert assets[0].released and event.payload["content_sha256"] == assets[0].sha256
