"""Publishing fixtures: approved, released assets (a creator's campaign rendered
in-process, approved by a reviewer) and channels."""

from datetime import UTC, datetime

import pytest

from approvals.models import AssetReview
from approvals.services import review_decide, review_release, review_submit
from publishing import clock
from publishing.services import channel_create

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def now():
    with clock.frozen(NOW):
        yield NOW


def approve(*, creator, reviewer, brand, asset):
    review_submit(actor=creator, brand=brand, asset=asset)
    review_decide(actor=reviewer, brand=brand, asset_id=asset.pk, action="approve")
    review = AssetReview.objects.unscoped().get(asset=asset)
    review_release(review_id=review.pk)
    asset.refresh_from_db()
    return asset


@pytest.fixture
def approved(creator, reviewer, brand, assets):
    return [approve(creator=creator, reviewer=reviewer, brand=brand, asset=asset) for asset in assets[:2]]


@pytest.fixture
def export_channel(owner, brand):
    return channel_create(
        actor=owner,
        brand=brand,
        name="Archive",
        kind="export",
        config={"prefix": "exports/feed"},
        caption_labels=["AI-generated"],
    )


@pytest.fixture(autouse=True)
def _tasks_in_memory(memory_broker):
    """Tasks the services send (publish, render) go to kombu's in-memory broker."""
    return memory_broker
