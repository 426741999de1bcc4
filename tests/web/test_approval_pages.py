"""The approval queue, bulk decisions, the asset page's review and comments."""

import io

import pytest
from django.urls import reverse
from PIL import Image

from approvals.models import AssetComment, AssetReview, ReviewState
from approvals.services import review_decide, review_submit
from approvals.tasks import release
from tests.conftest import PASSWORD


def log_in(client, user):
    client.login(username=user.get_username(), password=PASSWORD)


def queue(brand, **query):
    url = reverse("approval-queue", kwargs={"brand_slug": brand.slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def asset_page(brand, asset):
    return reverse("asset-detail", kwargs={"brand_slug": brand.slug, "asset_id": asset.pk})


def state_of(asset):
    return AssetReview.objects.unscoped().get(asset=asset).state


@pytest.fixture
def in_review(creator, brand, assets):
    for asset in assets:
        review_submit(actor=creator, brand=brand, asset=asset)
    return assets


def test_it_lists_images_in_review_beside_the_personas_reference_and_score(client, reviewer, brand, in_review):
    log_in(client, reviewer)
    response = client.get(queue(brand))
    assert response.status_code == 200
    page = response.content.decode()
    for asset in in_review:
        assert f'data-asset="{asset.pk}"' in page
    assert "as first made" in page and "identity " in page
    assert "step “Review” · owners or reviewers" in page
    assert "keys: j / k" in page


def test_it_filters_the_queue_by_state_campaign_persona_and_step(client, reviewer, brand, in_review, creator):
    log_in(client, reviewer)
    campaign_id = in_review[0].job.campaign_item.campaign_id
    assert f'data-asset="{in_review[0].pk}"' in client.get(queue(brand, campaign=campaign_id)).content.decode()
    assert 'data-asset="' not in client.get(queue(brand, campaign=campaign_id + 1000)).content.decode()
    assert 'data-asset="' not in client.get(queue(brand, state="approved")).content.decode()
    assert 'data-asset="' not in client.get(queue(brand, step=1)).content.decode()
    assert 'data-asset="' not in client.get(queue(brand, persona=999)).content.decode()


def test_it_approves_a_selection_and_reports_each_image(client, reviewer, second_reviewer, brand, in_review):
    review_decide(actor=second_reviewer, brand=brand, asset_id=in_review[2].pk, action="approve")
    log_in(client, reviewer)
    response = client.post(
        reverse("approvals-decide", kwargs={"brand_slug": brand.slug}),
        {"action": "approve", "asset": [in_review[0].pk, in_review[1].pk, in_review[2].pk], "next": queue(brand)},
        follow=True,
    )
    page = response.content.decode()
    assert "Approved 2 images." in page
    assert f"Image {in_review[2].pk}: Already approved by ben at" in page
    assert [state_of(a) for a in in_review] == [ReviewState.APPROVED] * 3


def test_it_rejects_only_with_a_reason(client, reviewer, brand, in_review):
    log_in(client, reviewer)
    url = reverse("approvals-decide", kwargs={"brand_slug": brand.slug})
    page = client.post(url, {"action": "reject", "asset": [in_review[0].pk]}, follow=True).content.decode()
    assert "Choose a reason for this decision." in page
    assert state_of(in_review[0]) == ReviewState.IN_REVIEW
    client.post(
        url, {"action": "reject", "asset": [in_review[0].pk], "reason_code": "artefact", "reason_text": "Smudge"}
    )
    assert state_of(in_review[0]) == ReviewState.REJECTED
    page = client.get(asset_page(brand, in_review[0])).content.decode()
    assert "Visual artefact: “Smudge”" in page and "ana</strong> rejected" in page


def test_it_shows_the_maker_why_they_cannot_approve_their_own(client, creator, brand, in_review):
    log_in(client, creator)
    page = client.get(asset_page(brand, in_review[0])).content.decode()
    assert "You made this image, so someone else must approve it." in page
    assert 'value="approve"' not in page
    response = client.post(
        reverse("approvals-decide", kwargs={"brand_slug": brand.slug}),
        {"action": "approve", "only": in_review[0].pk, "expected_step": 0},
        follow=True,
    )
    assert "someone else must approve it" in response.content.decode()
    assert state_of(in_review[0]) == ReviewState.IN_REVIEW


def test_it_tells_a_late_reviewer_on_the_asset_page_who_decided_first(
    client, reviewer, second_reviewer, brand, in_review
):
    review_decide(actor=second_reviewer, brand=brand, asset_id=in_review[0].pk, action="approve")
    log_in(client, reviewer)
    response = client.post(
        reverse("approvals-decide", kwargs={"brand_slug": brand.slug}),
        {"action": "reject", "only": in_review[0].pk, "expected_step": 0, "reason_code": "identity"},
        follow=True,
    )
    assert "Already approved by ben at" in response.content.decode()


def test_it_submits_drafts_from_the_asset_page_and_the_campaign_board(client, creator, brand, assets):
    log_in(client, creator)
    page = client.get(asset_page(brand, assets[0])).content.decode()
    assert "Not submitted for review yet." in page and "Submit for review" in page
    client.post(reverse("approvals-submit", kwargs={"brand_slug": brand.slug}), {"only": assets[0].pk})
    assert state_of(assets[0]) == ReviewState.IN_REVIEW
    campaign = assets[0].job.campaign_item.campaign
    board = client.get(reverse("campaign-detail", kwargs={"brand_slug": brand.slug, "campaign_id": campaign.pk}))
    assert "Submit 2 finished images for review" in board.content.decode()
    client.post(reverse("approvals-submit", kwargs={"brand_slug": brand.slug}), {"asset": [assets[1].pk, assets[2].pk]})
    assert [state_of(a) for a in assets] == [ReviewState.IN_REVIEW] * 3


def test_it_lets_reviewers_and_viewers_not_submit(client, reviewer, viewer, brand, assets):
    for someone in (reviewer, viewer):
        log_in(client, someone)
        url = reverse("approvals-submit", kwargs={"brand_slug": brand.slug})
        assert client.post(url, {"only": assets[0].pk}).status_code == 403
    assert not AssetReview.objects.unscoped().exists()


def test_it_threads_comments_and_emails_mentioned_members(
    client, creator, reviewer, brand, assets, mailoutbox, django_capture_on_commit_callbacks
):
    log_in(client, reviewer)
    url = reverse("asset-comment", kwargs={"brand_slug": brand.slug, "asset_id": assets[0].pk})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"body": "@cleo the left hand looks off, and @nobody"})
    first = AssetComment.objects.unscoped().get()
    assert list(first.mentions.all()) == [creator]
    [mail] = mailoutbox
    assert mail.to == ["cleo@example.com"] and "ana mentioned you" in mail.subject
    log_in(client, creator)
    client.post(url, {"body": "Fixed in the next render", "parent": first.pk})
    page = client.get(asset_page(brand, assets[0])).content.decode()
    assert page.index("the left hand looks off") < page.index("Fixed in the next render")
    assert AssetComment.objects.unscoped().get(parent=first).author == creator
    assert "Write something first." in client.post(url, {"body": "  "}, follow=True).content.decode()


@pytest.mark.parametrize(
    "name, method, kwargs",
    [
        ("approval-queue", "get", {}),
        ("approvals-decide", "post", {}),
        ("approvals-submit", "post", {}),
        ("asset-detail", "get", {"asset_id": None}),
        ("asset-detail", "post", {"asset_id": None}),
        ("asset-comment", "post", {"asset_id": None}),
    ],
)
def test_it_answers_outsiders_404_on_every_approval_page(client, outsider, brand, in_review, name, method, kwargs):
    log_in(client, outsider)
    kwargs = {k: in_review[0].pk if v is None else v for k, v in kwargs.items()}
    url = reverse(name, kwargs={"brand_slug": brand.slug, **kwargs})
    data = {"action": "approve", "only": in_review[0].pk, "asset": [in_review[0].pk], "body": "hi"}
    response = getattr(client, method)(url, data if method == "post" else None)
    assert response.status_code == 404
    assert state_of(in_review[0]) == ReviewState.IN_REVIEW
    assert not AssetComment.objects.unscoped().exists()


def test_it_ignores_other_brands_assets_in_a_selection(client, outsider, other_brand, brand, in_review):
    log_in(client, outsider)
    response = client.post(
        reverse("approvals-decide", kwargs={"brand_slug": other_brand.slug}),
        {"action": "approve", "asset": [in_review[0].pk]},
        follow=True,
    )
    assert "This image has not been submitted for review." in response.content.decode()
    assert state_of(in_review[0]) == ReviewState.IN_REVIEW


def test_it_serves_an_approved_image_without_the_draft_mark(
    client, reviewer, brand, in_review, media_root, memory_broker, django_capture_on_commit_callbacks
):
    log_in(client, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("approvals-decide", kwargs={"brand_slug": brand.slug}),
            {"action": "approve", "only": in_review[0].pk, "expected_step": 0},
        )
    review = AssetReview.objects.unscoped().get(asset=in_review[0])
    assert memory_broker.sent("default") == [("approvals.release", [review.pk])]
    assert "<strong>Draft</strong>" in client.get(asset_page(brand, in_review[0])).content.decode()
    release(review.pk)  # what the worker does with that task
    page = client.get(asset_page(brand, in_review[0])).content.decode()
    assert "<strong>Approved</strong>: served and downloaded without the DRAFT mark" in page
    assert "Draft: no" in page and "C2PA manifest: <strong>Trusted</strong>" in page
    download = client.get(
        reverse("asset-download", kwargs={"brand_slug": brand.slug, "asset_id": in_review[0].pk, "kind": "master"})
    )
    assert download["Content-Disposition"].endswith(f'-{in_review[0].pk}-master.png"')
    released = b"".join(download.streaming_content)
    with in_review[0].image.open("rb") as draft:
        assert pixels(released) == pixels(draft.read())
    still_draft = client.get(
        reverse("asset-download", kwargs={"brand_slug": brand.slug, "asset_id": in_review[1].pk, "kind": "master"})
    )
    assert still_draft["Content-Disposition"].endswith('-master-draft.png"')
    assert pixels(still_draft.content) != pixels(released)


def pixels(png_bytes):
    with Image.open(io.BytesIO(png_bytes)) as image:
        return image.convert("RGB").tobytes()
