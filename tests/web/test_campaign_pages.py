import io

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from PIL import Image

from campaigns.models import Campaign, CampaignItem
from campaigns.selectors import campaign_items
from campaigns.services import campaign_submit
from content.formats import disclosure_read
from generation.models import GenerationJob
from generation.services.jobs import generation_job_run

Status = GenerationJob.Status


@pytest.fixture
def campaign(owner, brand, persona, media_root):
    return campaign_submit(
        actor=owner, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1", "4:5"],
        variants=2,
    )  # fmt: skip


@pytest.fixture
def rendered(campaign, brand):
    generation_job_run(job_id=campaign_items(brand=brand, campaign=campaign)[0].job_id)
    return campaign


def builder_post(client, brand, persona, **changes):
    data = {
        "name": "Summer", "versions": [persona.current_version.pk], "formats": ["1:1", "9:16"], "variants": 2,
        "idempotency_key": "key-1", **changes,
    }  # fmt: skip
    return client.post(reverse("campaign-create", args=[brand.slug]), data)


def test_it_builds_and_submits_a_campaign_from_the_form(client, member, brand, persona):
    client.force_login(member)
    page = client.get(reverse("campaign-create", args=[brand.slug]))
    assert b"Ava (@ava, v1)" in page.content and b"Story 9:16" in page.content

    response = builder_post(client, brand, persona)
    campaign = Campaign.objects.for_brand(brand).get()
    assert response.status_code == 302 and response.url == reverse("campaign-detail", args=[brand.slug, campaign.pk])
    assert CampaignItem.objects.for_brand(brand).filter(campaign=campaign).count() == 4


def test_it_makes_one_campaign_of_a_form_submitted_twice(client, member, brand, persona):
    client.force_login(member)
    builder_post(client, brand, persona)
    builder_post(client, brand, persona)
    assert Campaign.objects.for_brand(brand).count() == 1
    assert GenerationJob.objects.for_brand(brand).count() == 4


def test_it_shows_the_count_and_cost_before_submitting(client, member, brand, persona, rendered):
    client.force_login(member)
    response = builder_post(client, brand, persona, estimate="1")
    assert response.status_code == 200 and not Campaign.objects.for_brand(brand).filter(name="Summer").exists()
    text = response.content.decode()
    assert "4 images" in text and "images/s that worker" in text and "measured for test-placeholder on cpu" in text


def test_it_shows_form_errors_for_a_campaign_over_quota(client, member, brand, persona):
    brand.monthly_image_quota = 3
    brand.save()
    client.force_login(member)
    response = builder_post(client, brand, persona)
    assert response.status_code == 200 and b"has used 0 of its 3 images this month" in response.content
    assert not Campaign.objects.for_brand(brand).exists()


def test_it_shows_the_board_with_progress_thumbnails_and_identity(client, member, brand, rendered):
    client.force_login(member)
    response = client.get(reverse("campaign-detail", args=[brand.slug, rendered.pk]))
    text = response.content.decode()
    assert "4 / 4 done" in text and "completed" in text and text.count("identity <span") == 4
    fragment = client.get(reverse("campaign-detail", args=[brand.slug, rendered.pk]), {"fragment": "1"})
    assert b"<html" not in fragment.content and b"4 / 4 done" in fragment.content


def test_it_flags_images_below_the_brands_identity_threshold(client, member, brand, rendered):
    brand.identity_threshold = 1.01
    brand.save()
    client.force_login(member)
    response = client.get(reverse("campaign-detail", args=[brand.slug, rendered.pk]))
    assert response.content.decode().count("⚑ below 1.01") == 4


def test_it_cancels_from_the_board(client, member, brand, campaign):
    client.force_login(member)
    response = client.post(reverse("campaign-cancel", args=[brand.slug, campaign.pk]))
    assert response.status_code == 302
    assert set(GenerationJob.objects.for_brand(brand).values_list("status", flat=True)) == {Status.CANCELLED}
    board = client.get(reverse("campaign-detail", args=[brand.slug, campaign.pk]))
    assert b"4 cancelled" in board.content and b"Cancel campaign" not in board.content


def test_it_shows_the_asset_with_provenance_disclosure_and_verifies_it(client, member, brand, rendered):
    asset = campaign_items(brand=brand, campaign=rendered)[3].job.asset
    client.force_login(member)
    page = client.get(reverse("asset-detail", args=[brand.slug, asset.pk])).content.decode()
    assert "trainedAlgorithmicMedia" in page and "model_sha256" in page and "noise_seed" in page
    # Checked against the brand's own root certificate.
    assert "C2PA manifest: <strong>Trusted</strong>, signed by Acme" in page and "for @ava of Acme" in page
    verified = client.post(reverse("asset-detail", args=[brand.slug, asset.pk])).content.decode()
    assert "Bit-exact" in verified and "Every pixel matches" in verified


def test_it_downloads_the_master_with_the_draft_mark_and_its_disclosure(client, member, brand, rendered):
    items = campaign_items(brand=brand, campaign=rendered)
    asset = next(item.job.asset for item in items if item.output_format == "4:5")
    client.force_login(member)
    response = client.get(reverse("asset-download", args=[brand.slug, asset.pk, "master"]))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert response["Content-Disposition"].endswith('-master-draft.png"')
    downloaded = Image.open(io.BytesIO(response.content))
    stored = Image.open(asset.image.open("rb"))
    assert downloaded.size == stored.size == (1080, 1350)
    assert list(downloaded.convert("RGB").getdata()) != list(stored.convert("RGB").getdata())
    assert disclosure_read(response.content)["ai_generated"]
    assert client.get(reverse("asset-download", args=[brand.slug, asset.pk, "raw"])).status_code == 404


def test_it_lets_viewers_see_but_not_build_cancel_or_verify(client, viewer, brand, rendered):
    client.force_login(viewer)
    assert client.get(reverse("campaign-detail", args=[brand.slug, rendered.pk])).status_code == 200
    assert client.get(reverse("campaign-create", args=[brand.slug])).status_code == 403
    assert client.post(reverse("campaign-cancel", args=[brand.slug, rendered.pk])).status_code == 403
    asset = campaign_items(brand=brand, campaign=rendered)[0].job.asset
    page = client.get(reverse("asset-detail", args=[brand.slug, asset.pk]))
    assert page.status_code == 200 and b"Verify" not in page.content


def test_it_lists_campaigns_and_brand_quotas_for_operators_in_the_admin(client, campaign, brand):
    admin = get_user_model().objects.create_superuser("operator", password="x")
    client.force_login(admin)
    campaigns = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert campaigns.status_code == 200 and b"Spring" in campaigns.content
    brands = client.get(reverse("admin:brands_brand_changelist"))
    assert b"2000" in brands.content


def test_it_says_once_on_the_board_why_queued_items_wait(client, member, brand, campaign):
    GenerationJob.objects.for_brand(brand).update(
        dispatch_error="The task queue is unreachable (ConnectionError); sending again in 5 s."
    )
    client.force_login(member)
    text = client.get(reverse("campaign-detail", args=[brand.slug, campaign.pk])).content.decode()
    assert text.count("The task queue is unreachable") == 1 and "Waiting: The task queue" in text
