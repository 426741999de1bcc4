"""The approval workflow settings page and its reviewer groups, through the test client."""

import re

import pytest
from django.urls import reverse

from approvals.models import ReviewerGroup, Workflow
from approvals.services import WORKFLOW_STEPS_MAX, reviewer_group_save, workflow_update
from brands.models import Role
from tests.approvals.conftest import member_make
from tests.conftest import PASSWORD


def login(client, user):
    assert client.login(username=user.get_username(), password=PASSWORD)


def text(response):
    """The page as a reader sees it: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def workflow_url(brand):
    return reverse("approval-workflow", args=[brand.slug])


def workflow_post(*steps):
    """What the browser sends for `steps` (dicts of name/roles/group/mode): every row,
    the unused ones blank with their radio left on "any"."""
    data = {}
    for number in range(1, WORKFLOW_STEPS_MAX + 1):
        step = steps[number - 1] if number <= len(steps) else {}
        data[f"step-{number}-name"] = step.get("name", "")
        data[f"step-{number}-roles"] = step.get("roles", [])
        data[f"step-{number}-group"] = step.get("group", "")
        data[f"step-{number}-mode"] = step.get("mode", "any")
    return data


def revisions(brand):
    return list(Workflow.objects.for_brand(brand).order_by("revision"))


@pytest.fixture
def reviewer(owner, brand):
    return member_make(owner, brand, "ana", Role.REVIEWER)


@pytest.fixture
def legal(owner, brand, reviewer):
    return reviewer_group_save(actor=owner, brand=brand, name="Legal", member_ids=[reviewer.pk])


# --- reading ---------------------------------------------------------------------


def test_it_shows_the_default_steps_before_the_brand_has_a_revision(client, member, brand):
    login(client, member)
    response = client.get(workflow_url(brand))
    assert response.status_code == 200
    assert "The default workflow applies" in text(response)
    assert "Review — any one of owners or reviewers" in text(response)
    assert revisions(brand) == []  # reading writes nothing


def test_it_shows_the_revision_steps_in_words_with_who_changed_it(client, owner, viewer, brand, legal):
    workflow_update(
        actor=owner,
        brand=brand,
        steps=[
            {"name": "Review", "roles": ["reviewer", "owner"], "mode": "any"},
            {"name": "Legal check", "roles": [], "group": legal.pk, "mode": "all"},
        ],
    )
    login(client, viewer)
    page = text(client.get(workflow_url(brand)))
    assert "Revision 1, changed by owner on" in page
    assert "Review — any one of owners or reviewers" in page
    assert "Legal check — all of the Legal group" in page
    assert page.index("Review — any one") < page.index("Legal check — all")
    assert "Legal ana" in page  # the group with its members


# --- changing the steps ---------------------------------------------------------


def test_it_prefills_the_owners_form_with_the_current_steps(client, owner, brand):
    login(client, owner)
    response = client.get(workflow_url(brand))
    form = response.context["workflow_form"]
    assert form["step-1-name"].value() == "Review"
    assert form["step-1-roles"].value() == ["owner", "reviewer"]
    assert form["step-1-mode"].value() == "any"
    assert form["step-2-name"].value() is None
    assert 'value="Review"' in response.content.decode()


def test_it_saves_a_two_step_workflow_as_a_new_revision(client, owner, brand, legal, reviewer):
    workflow_update(actor=owner, brand=brand, steps=[{"name": "Review", "roles": ["owner"], "mode": "any"}])
    login(client, owner)
    data = workflow_post(
        {"name": "  First look ", "roles": ["reviewer", "owner"], "mode": "any"},
        {"name": "Legal", "group": str(legal.pk), "mode": "all"},
    )
    response = client.post(workflow_url(brand), data)
    assert response.status_code == 302 and response.url == workflow_url(brand)

    assert [w.revision for w in revisions(brand)] == [1, 2]
    assert revisions(brand)[-1].steps == [
        {
            "name": "First look",
            "roles": ["owner", "reviewer"],
            "group": None,
            "group_name": "",
            "members": [],
            "mode": "any",
        },
        {
            "name": "Legal",
            "roles": [],
            "group": legal.pk,
            "group_name": "Legal",
            "members": [reviewer.pk],
            "mode": "all",
        },
    ]
    assert revisions(brand)[-1].created_by == owner
    page = text(client.get(response.url))
    assert "Saved as revision 2; images already in review finish on the revision they started on." in page
    assert "First look — any one of owners or reviewers" in page


def test_it_drops_blank_rows_between_steps(client, owner, brand):
    login(client, owner)
    data = workflow_post({"name": "One", "roles": ["owner"]}, {}, {"name": "Two", "roles": ["creator"], "mode": "all"})
    assert client.post(workflow_url(brand), data).status_code == 302
    (workflow,) = revisions(brand)
    assert [(step["name"], step["roles"], step["mode"]) for step in workflow.steps] == [
        ("One", ["owner"], "any"),
        ("Two", ["creator"], "all"),
    ]


def test_it_shows_a_step_without_roles_or_group_as_an_error_and_saves_nothing(client, owner, brand):
    login(client, owner)
    response = client.post(workflow_url(brand), workflow_post({"name": "Nobody decides", "mode": "any"}))
    assert response.status_code == 200
    assert "Step 1: name at least one role or a reviewer group who decide." in text(response)
    assert response.context["workflow_form"]["step-1-name"].value() == "Nobody decides"  # kept for correcting
    assert revisions(brand) == []


def test_it_refuses_a_workflow_whose_rows_are_all_blank(client, owner, brand):
    login(client, owner)
    response = client.post(workflow_url(brand), workflow_post())
    assert response.status_code == 200
    assert f"A workflow has 1 to {WORKFLOW_STEPS_MAX} steps." in text(response)
    assert revisions(brand) == []


def test_it_refuses_a_group_of_another_brand_in_a_step(client, owner, outsider, brand, other_brand):
    foreign = reviewer_group_save(actor=outsider, brand=other_brand, name="Theirs", member_ids=[outsider.pk])
    login(client, owner)
    response = client.post(workflow_url(brand), workflow_post({"name": "Sneaky", "group": str(foreign.pk)}))
    assert response.status_code == 200
    assert response.context["workflow_form"].errors
    assert revisions(brand) == []


# --- reviewer groups --------------------------------------------------------------


def test_it_creates_a_reviewer_group_of_brand_members(client, owner, member, reviewer, brand):
    login(client, owner)
    response = client.post(
        reverse("reviewer-group-create", args=[brand.slug]), {"name": "Legal", "members": [reviewer.pk, member.pk]}
    )
    assert response.status_code == 302
    group = ReviewerGroup.objects.for_brand(brand).get()
    assert group.name == "Legal"
    assert set(group.members.all()) == {reviewer, member}
    page = text(client.get(response.url))
    assert "Created the reviewer group Legal." in page
    assert "Legal member, ana" in page or "Legal ana, member" in page


def test_it_renames_a_group_and_changes_its_members(client, owner, member, reviewer, brand, legal):
    login(client, owner)
    response = client.post(
        reverse("reviewer-group-update", args=[brand.slug, legal.pk]),
        {"name": "Legal & compliance", "members": [member.pk]},
    )
    assert response.status_code == 302
    legal.refresh_from_db()
    assert legal.name == "Legal & compliance"
    assert list(legal.members.all()) == [member]


def test_it_refuses_a_non_member_in_a_group_even_when_the_form_is_tampered_with(
    client, owner, outsider, reviewer, brand, legal
):
    login(client, owner)
    created = client.post(
        reverse("reviewer-group-create", args=[brand.slug]), {"name": "Insiders", "members": [outsider.pk]}
    )
    updated = client.post(
        reverse("reviewer-group-update", args=[brand.slug, legal.pk]),
        {"name": "Legal", "members": [reviewer.pk, outsider.pk]},
    )
    for response in (created, updated):
        assert response.status_code == 200
        assert "Only members of this brand can be in its reviewer groups." in text(response)
    assert list(ReviewerGroup.objects.for_brand(brand)) == [legal]
    assert list(legal.members.all()) == [reviewer]


def test_it_refuses_a_duplicate_group_name(client, owner, reviewer, brand, legal):
    other = reviewer_group_save(actor=owner, brand=brand, name="Brand team", member_ids=[])
    login(client, owner)
    created = client.post(reverse("reviewer-group-create", args=[brand.slug]), {"name": "Legal"})
    renamed = client.post(reverse("reviewer-group-update", args=[brand.slug, other.pk]), {"name": " Legal "})
    for response in (created, renamed):
        assert response.status_code == 200
        assert "This brand already has a group called &#x27;Legal&#x27;." in response.content.decode()
    other.refresh_from_db()
    assert other.name == "Brand team"
    assert ReviewerGroup.objects.for_brand(brand).count() == 2


def test_it_does_not_find_a_group_of_another_brand(client, owner, outsider, brand, other_brand):
    foreign = reviewer_group_save(actor=outsider, brand=other_brand, name="Theirs", member_ids=[outsider.pk])
    login(client, owner)
    response = client.post(reverse("reviewer-group-update", args=[brand.slug, foreign.pk]), {"name": "Mine"})
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"


# --- who may do what ----------------------------------------------------------------


@pytest.fixture
def posts(brand, legal):
    """Every POST endpoint of the page, with a valid body."""
    return [
        (workflow_url(brand), workflow_post({"name": "Review", "roles": ["owner"]})),
        (reverse("reviewer-group-create", args=[brand.slug]), {"name": "New"}),
        (reverse("reviewer-group-update", args=[brand.slug, legal.pk]), {"name": "Renamed"}),
    ]


def test_it_lets_creators_and_viewers_read_the_workflow_but_not_change_it(client, member, viewer, brand, posts):
    for someone in (member, viewer):
        login(client, someone)
        response = client.get(workflow_url(brand))
        assert response.status_code == 200
        assert "Review — any one of owners or reviewers" in text(response)
        assert response.context["workflow_form"] is None and "Change the workflow" not in text(response)
        assert "Legal ana" in text(response)
        for url, data in posts:
            assert client.post(url, data).status_code == 403, url
    assert revisions(brand) == []
    assert [g.name for g in ReviewerGroup.objects.for_brand(brand)] == ["Legal"]


def test_it_hides_the_workflow_pages_from_outsiders(client, outsider, other_brand, brand, posts):
    login(client, outsider)
    assert client.get(workflow_url(brand)).status_code == 404
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert revisions(brand) == []
    assert [g.name for g in ReviewerGroup.objects.for_brand(brand)] == ["Legal"]
