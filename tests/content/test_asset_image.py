"""The brand-scoped image view: an asset whose file has gone from storage
answers 404 with a message and one error line, not a 500."""

import io
import logging

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from content.formats import draft_mark
from content.models import Asset


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def asset(brand, persona, media_root):
    asset = Asset(brand=brand, persona=persona, version=persona.current_version, width=4, height=4)
    asset.image.save("ava.png", ContentFile(png_bytes()))
    return asset


def test_it_shows_a_member_the_master_with_the_draft_mark_when_there_is_no_thumbnail(client, member, brand, asset):
    client.force_login(member)
    response = client.get(reverse("asset-image", args=[brand.slug, asset.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content == draft_mark(png_bytes())


def test_it_answers_404_and_logs_one_error_for_an_asset_whose_file_is_missing(client, member, brand, asset, caplog):
    asset.image.storage.delete(asset.image.name)
    client.force_login(member)

    with caplog.at_level(logging.INFO):
        response = client.get(reverse("asset-image", args=[brand.slug, asset.pk]))

    assert response.status_code == 404
    assert response.content.decode() == "The image file for this asset is missing from storage."
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "content.views" and errors[0].exc_info is None
    line = errors[0].getMessage()
    assert "\n" not in line
    assert f"Asset {asset.pk} of brand {brand.slug}" in line
    assert repr(asset.image.name) in line and "FileSystemStorage" in line and str(asset.image.storage.location) in line
