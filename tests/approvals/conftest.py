import pytest

from brands.models import Role
from brands.services import membership_add
from campaigns.models import CampaignItem
from campaigns.services import campaign_submit
from content.models import Asset
from generation.services.jobs import generation_job_run
from tests.conftest import user_make


def member_make(owner, brand, username, role):
    user = user_make(username)
    user.email = f"{username}@example.com"
    user.save(update_fields=["email"])
    membership_add(actor=owner, brand=brand, user=user, role=role)
    return user


@pytest.fixture
def reviewer(owner, brand):
    return member_make(owner, brand, "ana", Role.REVIEWER)


@pytest.fixture
def second_reviewer(owner, brand):
    return member_make(owner, brand, "ben", Role.REVIEWER)


@pytest.fixture
def creator(owner, brand):
    return member_make(owner, brand, "cleo", Role.CREATOR)


def campaign_assets(*, actor, brand, persona, variants=3):
    """A campaign `actor` submits, rendered in-process: its assets, in item order."""
    campaign = campaign_submit(
        actor=actor, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=variants
    )
    items = list(CampaignItem.objects.unscoped().filter(campaign=campaign).order_by("pk"))
    for item in items:
        generation_job_run(job_id=item.job_id)
    return [Asset.objects.unscoped().get(job_id=item.job_id) for item in items]


@pytest.fixture
def assets(creator, brand, persona, media_root):
    return campaign_assets(actor=creator, brand=brand, persona=persona)
