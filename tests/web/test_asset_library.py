"""The brand's asset library: the grid, its filters, and the bulk download as a zip."""

import io
import zipfile

import pytest
from django.urls import reverse

from campaigns.selectors import campaign_items
from campaigns.services import campaign_submit
from content.models import Asset
from content.selectors import assets_for_brand
from generation.services.jobs import generation_job_run


def campaign_run(*, actor, brand, persona, name, formats):
    """A small campaign whose first item's job (its formats rendered together) has run."""
    campaign = campaign_submit(
        actor=actor, brand=brand, name=name, versions=[persona.current_version], formats=formats, variants=1
    )
    generation_job_run(job_id=campaign_items(brand=brand, campaign=campaign)[0].job_id)
    return campaign


@pytest.fixture
def campaign(owner, brand, persona, media_root):
    return campaign_run(actor=owner, brand=brand, persona=persona, name="Spring", formats=["1:1", "4:5"])


@pytest.fixture
def assets(campaign, brand):
    return list(Asset.objects.for_brand(brand).order_by("-created_at", "-id"))


@pytest.fixture
def other_assets(outsider, other_brand, other_persona, media_root):
    campaign_run(actor=outsider, brand=other_brand, persona=other_persona, name="Theirs", formats=["1:1"])
    return list(Asset.objects.for_brand(other_brand))


def list_url(brand, **query):
    url = reverse("asset-list", args=[brand.slug])
    return url + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


def zip_post(client, brand, ids):
    return client.post(list_url(brand), {"assets": [str(pk) for pk in ids]})


def test_it_shows_members_the_grid_newest_first(client, member, brand, assets):
    assert len(assets) >= 1 and all(asset.web for asset in assets)
    client.force_login(member)
    response = client.get(list_url(brand))
    text = response.content.decode()
    assert response.status_code == 200
    positions = [text.index(f'data-asset="{asset.pk}"') for asset in assets]
    assert positions == sorted(positions)
    for asset in assets:
        assert reverse("asset-image", args=[brand.slug, asset.pk]) in text
        assert reverse("asset-detail", args=[brand.slug, asset.pk]) in text
        assert f'name="assets" value="{asset.pk}"' in text
    assert "@ava" in text and "1:1" in text and "identity" in text and "Download selected (zip)" in text


def test_it_links_the_library_from_the_brand_dashboard(client, viewer, brand):
    client.force_login(viewer)
    dashboard = client.get(reverse("brand-dashboard", args=[brand.slug]))
    assert reverse("asset-list", args=[brand.slug]).encode() in dashboard.content


def test_it_filters_by_persona_campaign_and_format(client, member, owner, brand, persona, campaign, assets):
    later = campaign_run(actor=owner, brand=brand, persona=persona, name="Summer", formats=["9:16"])
    later_ids = set(
        Asset.objects.for_brand(brand).filter(job__campaign_item__campaign=later).values_list("pk", flat=True)
    )
    assert len(later_ids) == 1
    client.force_login(member)

    def shown(**query):
        response = client.get(list_url(brand, **query))
        assert response.status_code == 200
        return {
            pk
            for pk in Asset.objects.for_brand(brand).values_list("pk", flat=True)
            if f'data-asset="{pk}"' in response.content.decode()
        }

    everything = {asset.pk for asset in assets} | later_ids
    assert shown() == everything
    assert shown(persona=persona.pk) == everything
    assert shown(campaign=campaign.pk) == {asset.pk for asset in assets}
    assert shown(campaign=later.pk) == later_ids
    assert shown(format="9:16") == later_ids
    assert shown(format="1:1", campaign=later.pk) == set()
    square = {asset.pk for asset in assets if asset.output_format == "1:1"}
    assert square and shown(format="1:1") == square


def test_it_filters_to_nothing_for_unknown_or_foreign_ids(client, member, brand, assets, other_persona, other_assets):
    client.force_login(member)
    other_campaign_id = other_assets[0].job.campaign_item.campaign_id
    for query in (
        {"persona": other_persona.pk},
        {"campaign": other_campaign_id},
        {"persona": "abc"},
        {"campaign": "-1"},
        {"campaign": "99999999999999999999999"},
        {"format": "nonsense"},
        {"page": "x"},
    ):
        response = client.get(list_url(brand, **query))
        assert response.status_code == 200, query
        text = response.content.decode()
        if "page" not in query:
            assert "data-asset=" not in text and "No assets match these filters" in text, query
    assert not assets_for_brand(brand=brand, persona_id=other_persona.pk).exists()


def test_it_pages_48_at_a_time(client, member, brand, assets, monkeypatch):
    monkeypatch.setattr("campaigns.views.ASSETS_PER_PAGE", 1)
    client.force_login(member)
    first = client.get(list_url(brand)).content.decode()
    second = client.get(list_url(brand, page=2)).content.decode()
    assert f'data-asset="{assets[0].pk}"' in first and f'data-asset="{assets[1].pk}"' not in first
    assert f'data-asset="{assets[1].pk}"' in second and "page=1" in second


def test_it_zips_exactly_the_selected_web_jpegs(client, viewer, brand, assets):
    chosen = assets[:2]
    client.force_login(viewer)
    response = zip_post(client, brand, [asset.pk for asset in chosen])
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    expected = {f"acme-ava-{asset.pk}-{asset.output_format.replace(':', 'x')}-draft.jpg": asset for asset in chosen}
    assert set(archive.namelist()) == set(expected)
    for name, asset in expected.items():
        with asset.web.open("rb") as stored:
            assert archive.read(name) == stored.read()
        assert archive.read(name)[:2] == b"\xff\xd8"


def test_it_leaves_other_brands_assets_out_of_the_zip(client, member, brand, assets, other_assets):
    client.force_login(member)
    response = zip_post(client, brand, [assets[0].pk] + [asset.pk for asset in other_assets])
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == [f"acme-ava-{assets[0].pk}-{assets[0].output_format.replace(':', 'x')}-draft.jpg"]
    # Only another brand's ids: nothing to download, and nothing of theirs leaks.
    only_theirs = zip_post(client, brand, [asset.pk for asset in other_assets])
    assert only_theirs.status_code == 200 and only_theirs["Content-Type"].startswith("text/html")
    assert b"None of the selected assets" in only_theirs.content


def test_it_shows_an_error_for_an_empty_or_too_large_selection(client, member, brand, assets):
    client.force_login(member)
    empty = zip_post(client, brand, [])
    assert empty.status_code == 200 and b"Select at least one asset to download." in empty.content
    assert f'data-asset="{assets[0].pk}"'.encode() in empty.content
    junk = client.post(list_url(brand), {"assets": ["abc", "²"]})
    assert b"Select at least one asset to download." in junk.content
    too_many = zip_post(client, brand, range(1, 202))
    assert too_many.status_code == 200 and b"Select at most 200 assets" in too_many.content


def test_it_answers_404_to_outsiders(client, outsider, brand, assets, other_brand):
    client.force_login(outsider)
    assert client.get(list_url(brand)).status_code == 404
    assert zip_post(client, brand, [asset.pk for asset in assets]).status_code == 404
