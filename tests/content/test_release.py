"""content.services.asset_release and friends: an approved asset's files without the
DRAFT mark, signed anew with the draft as parent ingredient; withdrawn when the approval
lapses; served and named by whether the asset is released."""

import hashlib
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image, ImageChops, ImageStat

from audit.models import AuditEvent
from campaigns.models import CampaignItem
from campaigns.services import campaign_submit
from content import services as content_services
from content.c2pa import APPROVAL_LABEL, PROVENANCE_LABEL, brand_trust_anchor, c2pa_read
from content.formats import disclosure_read, draft_layer, draft_mark
from content.models import Asset
from content.services import (
    ReleaseRefused,
    asset_download_name,
    asset_file_open,
    asset_release,
    asset_release_withdraw,
)
from generation.services.jobs import generation_job_run

UNTRUSTED = "signingCredential.untrusted"


@pytest.fixture
def asset(owner, brand, persona, media_root):
    """A real 4:5 campaign asset: rendered, draft-marked derivatives, signed."""
    campaign = campaign_submit(
        actor=owner, brand=brand, name="Spring", versions=[persona.current_version], formats=["4:5"], variants=1
    )
    [item] = CampaignItem.objects.unscoped().filter(campaign=campaign)
    assert generation_job_run(job_id=item.job_id).result == "succeeded"
    return Asset.objects.for_brand(brand).get(job_id=item.job_id)


def approval_for(asset, **changes):
    return {
        "review_id": 17,
        "approved_by": ["rita"],
        "approved_at": "2026-12-04T14:02:00+00:00",
        "workflow": "Default",
        "revision": 1,
        "content_sha256": asset.sha256,
    } | changes


def read(name):
    with default_storage.open(name, "rb") as stored:
        return stored.read()


def decode(data):
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def stored_files(media_root):
    return sorted(str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file())


def active(store):
    return store["manifests"][store["active_manifest"]]


def assertion(manifest, label):
    [found] = [a["data"] for a in manifest["assertions"] if a["label"] == label or a["label"].startswith(f"{label}.v")]
    return found


def mean_difference(a, b, mask=None):
    """Mean absolute difference per channel, averaged, over `mask` (L, non-zero) or everywhere."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b), mask).mean) / 3


def mark_masks(size):
    """Where the DRAFT mark covers the picture, and where it certainly does not (its
    alpha grown by a few pixels, so resampling's spread is not counted as 'outside')."""
    alpha = draft_layer(size).getchannel("A")
    inside = alpha.point(lambda value: 255 if value > 128 else 0)
    grown = alpha.point(lambda value: 255 if value else 0).resize((size[0] // 8, size[1] // 8)).resize(size)
    outside = grown.point(lambda value: 0 if value else 255)
    return inside, outside


def test_it_releases_a_master_with_the_draft_masters_pixels_and_an_approved_disclosure(asset):
    released = asset_release(asset=asset, approval=approval_for(asset))

    assert released.released and released.released_at is not None
    draft, master = read(asset.image.name), read(released.released_image.name)
    assert decode(master).tobytes() == decode(draft).tobytes()
    assert decode(master).size == (1080, 1350)
    disclosure = disclosure_read(master)
    assert disclosure["ai_generated"] and disclosure["format"] == "4:5" and disclosure["draft"] is False
    assert "approved for publication" in disclosure["description"] and "draft" not in disclosure["description"]
    assert disclosure_read(draft)["draft"] is True  # the draft itself is never touched
    assert hashlib.sha256(draft).hexdigest() == asset.sha256
    assert released.released_image.name.startswith(f"assets/acme/job-{asset.job_id}-a1-approved-")


def test_it_signs_the_released_master_with_the_draft_as_parent_ingredient_and_the_approval(brand, asset):
    approval = approval_for(asset)
    released = asset_release(asset=asset, approval=approval)
    draft, master = read(asset.image.name), read(released.released_image.name)
    anchor = brand_trust_anchor(brand=brand)

    store = c2pa_read(master, mime="image/png", trust_anchors=anchor)
    assert store["validation_state"] == "Trusted"
    assert store.get("validation_status", []) == []
    [delta] = store["validation_results"]["ingredientDeltas"]
    assert [entry["code"] for entry in delta["validationDeltas"]["success"]] == ["ingredient.manifest.validated"]
    assert delta["validationDeltas"]["failure"] == []

    manifest = active(store)
    assert manifest["signature_info"]["common_name"] == "Acme content signing"
    [parent] = manifest["ingredients"]
    assert parent["relationship"] == "parentOf"
    assert parent["title"] == asset.image.name.rpartition("/")[2]
    # As c2pa found the draft when it signed: trusted under the brand's root, nothing failed.
    recorded = parent["validation_results"]["activeManifest"]
    assert "signingCredential.trusted" in {entry["code"] for entry in recorded["success"]}
    assert recorded["failure"] == []
    # The parent is the draft master's own manifest, carried whole into the new store.
    draft_store = c2pa_read(draft, mime="image/png")
    assert parent["active_manifest"] == draft_store["active_manifest"]
    assert active(draft_store)["claim_generator_info"][0]["name"] == "Persona Studio"
    assert store["manifests"][parent["active_manifest"]]["assertions"] == active(draft_store)["assertions"]
    assert parent["active_manifest"] != store["active_manifest"]

    assert assertion(manifest, APPROVAL_LABEL) == approval
    assert assertion(manifest, PROVENANCE_LABEL)["draft"] is False
    actions = assertion(manifest, "c2pa.actions")["actions"]
    assert [action["action"] for action in actions] == ["c2pa.opened", "c2pa.edited.metadata", "c2pa.published"]
    assert actions[2]["when"] == approval["approved_at"] and "rita" in actions[2]["description"]

    # Without the brand's root: valid, untrusted (the approved manifest and the draft's
    # inside it, one entry each), nothing else wrong.
    plain = c2pa_read(master, mime="image/png")
    codes = [entry["code"] for entry in plain["validation_status"]]
    assert (plain["validation_state"], codes) == ("Valid", [UNTRUSTED, UNTRUSTED])
    urls = {entry["url"].split("/")[2] for entry in plain["validation_status"]}
    assert urls == {store["active_manifest"], parent["active_manifest"]}


def test_it_signs_the_released_web_and_thumbnail_with_the_approved_master_as_parent(brand, asset):
    released = asset_release(asset=asset, approval=approval_for(asset))
    master_store = c2pa_read(read(released.released_image.name), mime="image/png")
    anchor = brand_trust_anchor(brand=brand)

    for field, mime in (("released_web", "image/jpeg"), ("released_thumbnail", "image/webp")):
        name = getattr(released, field).name
        store = c2pa_read(read(name), mime=mime, trust_anchors=anchor)
        assert store["validation_state"] == "Trusted", name
        manifest = active(store)
        assert manifest["title"] == name.rpartition("/")[2]
        [parent] = manifest["ingredients"]
        assert parent["relationship"] == "parentOf"
        assert parent["active_manifest"] == master_store["active_manifest"]
        # The whole chain travels along: web -> approved master -> draft master.
        assert len(store["manifests"]) == 3
        actions = [action["action"] for action in assertion(manifest, "c2pa.actions")["actions"]]
        assert actions == ["c2pa.opened", "c2pa.transcoded", "c2pa.published"]
        assert assertion(manifest, APPROVAL_LABEL)["review_id"] == 17
        assert disclosure_read(read(name))["draft"] is False


def test_it_makes_web_and_thumbnail_without_the_draft_mark(asset):
    released = asset_release(asset=asset, approval=approval_for(asset))
    master = decode(read(asset.image.name))

    for draft_field, released_field, width in (("web", "released_web", 1080), ("thumbnail", "released_thumbnail", 256)):
        draft = decode(read(getattr(asset, draft_field).name))
        clean = decode(read(getattr(released, released_field).name))
        assert draft.size == clean.size == (width, round(1350 * width / 1080))
        inside, outside = mark_masks(draft.size)
        # Where the mark was, the released file differs from the draft by far; away from
        # it, only by the lossy encoders' noise.
        assert mean_difference(draft, clean, inside) > 40, draft_field
        assert mean_difference(draft, clean, outside) < 2, draft_field
        # And it is what a plain resize of the master looks like.
        plain = master.resize(clean.size, Image.Resampling.LANCZOS)
        assert mean_difference(clean, plain) < 2, draft_field
        assert mean_difference(clean, plain, inside) < 3, draft_field


def test_it_refuses_an_approval_of_other_content_and_writes_nothing(brand, asset, media_root):
    before = stored_files(media_root)

    with pytest.raises(ReleaseRefused, match="nothing was released"):
        asset_release(asset=asset, approval=approval_for(asset, content_sha256="0" * 64))

    asset.refresh_from_db()
    assert not asset.released and asset.released_image.name == "" and asset.released_at is None
    assert stored_files(media_root) == before
    assert not AuditEvent.objects.for_brand(brand).filter(action="asset.released").exists()


def test_it_refuses_when_the_stored_master_no_longer_hashes_to_the_approved_content(brand, asset, media_root):
    tampered = draft_mark(read(asset.image.name))
    default_storage.delete(asset.image.name)
    default_storage.save(asset.image.name, ContentFile(tampered))
    before = stored_files(media_root)

    with pytest.raises(ReleaseRefused, match="no longer hashes"):
        asset_release(asset=asset, approval=approval_for(asset))

    assert stored_files(media_root) == before
    assert not Asset.objects.for_brand(brand).get(pk=asset.pk).released


def test_it_refuses_an_approval_missing_a_field(asset):
    approval = approval_for(asset)
    del approval["workflow"]
    with pytest.raises(ValueError, match="workflow"):
        asset_release(asset=asset, approval=approval)


def test_it_does_nothing_the_second_time_for_the_same_approval(brand, asset, media_root):
    first = asset_release(asset=asset, approval=approval_for(asset))
    names, files = first.released_image.name, stored_files(media_root)

    again = asset_release(asset=Asset.objects.for_brand(brand).get(pk=asset.pk), approval=approval_for(asset))

    assert again.released_image.name == names and again.released_at == first.released_at
    assert stored_files(media_root) == files
    assert AuditEvent.objects.for_brand(brand).filter(action="asset.released").count() == 1


def test_it_releases_again_under_a_new_approval_removing_the_former_files_after_commit(
    brand, asset, media_root, django_capture_on_commit_callbacks
):
    first = asset_release(asset=asset, approval=approval_for(asset))
    former = [first.released_image.name, first.released_web.name, first.released_thumbnail.name]

    with django_capture_on_commit_callbacks() as callbacks:
        second = asset_release(asset=asset, approval=approval_for(asset, review_id=18, revision=2))
        assert all(default_storage.exists(name) for name in former)  # not before commit
    for callback in callbacks:
        callback()

    assert second.released_image.name not in former
    assert not any(default_storage.exists(name) for name in former)
    assert default_storage.exists(second.released_image.name)
    manifest = active(c2pa_read(read(second.released_image.name), mime="image/png"))
    assert assertion(manifest, APPROVAL_LABEL)["review_id"] == 18
    events = AuditEvent.objects.for_brand(brand).filter(action="asset.released").order_by("pk")
    assert [event.after["review_id"] for event in events] == [17, 18]
    assert events[1].before["image"] == former[0]


def test_it_removes_what_it_wrote_when_recording_the_release_fails(brand, asset, media_root, monkeypatch):
    before = stored_files(media_root)

    def audit_down(**kwargs):
        raise RuntimeError("audit table locked")

    monkeypatch.setattr(content_services, "audit_record", audit_down)
    with pytest.raises(RuntimeError, match="audit table locked"):
        asset_release(asset=asset, approval=approval_for(asset))

    assert stored_files(media_root) == before
    assert not Asset.objects.for_brand(brand).get(pk=asset.pk).released


def test_it_withdraws_a_release_deleting_its_files_after_commit(
    brand, asset, media_root, django_capture_on_commit_callbacks
):
    released = asset_release(asset=asset, approval=approval_for(asset))
    names = [released.released_image.name, released.released_web.name, released.released_thumbnail.name]

    with django_capture_on_commit_callbacks() as callbacks:
        withdrawn = asset_release_withdraw(asset=asset, reason="approval lapsed: persona version retired")
        assert all(default_storage.exists(name) for name in names)
    for callback in callbacks:
        callback()

    assert not withdrawn.released
    stored = Asset.objects.for_brand(brand).get(pk=asset.pk)
    assert not stored.released and stored.released_at is None and stored.released_image.name == ""
    assert "release" not in stored.metadata
    assert not any(default_storage.exists(name) for name in names)
    assert default_storage.exists(asset.image.name)  # the draft stays
    [event] = AuditEvent.objects.for_brand(brand).filter(action="asset.release_withdrawn")
    assert event.after == {"reason": "approval lapsed: persona version retired"}
    assert event.before["image"] == names[0] and event.before["review_id"] == 17
    opened, is_released = asset_file_open(asset=stored, kind="master")
    assert is_released is False and opened == draft_mark(read(asset.image.name))

    # Withdrawing what is not released changes nothing and records nothing.
    asset_release_withdraw(asset=stored, reason="again")
    assert AuditEvent.objects.for_brand(brand).filter(action="asset.release_withdrawn").count() == 1


def test_it_opens_the_released_files_once_released_and_the_draft_ones_before(asset):
    for kind, field in (("master", "image"), ("web", "web"), ("thumbnail", "thumbnail")):
        opened, is_released = asset_file_open(asset=asset, kind=kind)
        assert is_released is False
        data = opened if isinstance(opened, bytes) else opened.read()
        if kind == "master":
            assert data == draft_mark(read(asset.image.name))  # marked on the fly
        else:
            assert data == read(getattr(asset, field).name)

    released = asset_release(asset=asset, approval=approval_for(asset))
    for kind, field in (("master", "released_image"), ("web", "released_web"), ("thumbnail", "released_thumbnail")):
        opened, is_released = asset_file_open(asset=released, kind=kind)
        with opened:
            assert is_released is True and opened.read() == read(getattr(released, field).name)

    with pytest.raises(ValueError, match="unknown file kind"):
        asset_file_open(asset=released, kind="raw")
    default_storage.delete(released.released_web.name)
    with pytest.raises(FileNotFoundError):
        asset_file_open(asset=released, kind="web")


def test_it_serves_the_released_thumbnail_on_the_image_page_and_the_draft_before(client, member, brand, asset):
    client.force_login(member)
    url = reverse("asset-image", args=[brand.slug, asset.pk])

    draft = client.get(url)
    assert draft.status_code == 200 and draft["Content-Type"] == "image/webp"
    assert b"".join(draft.streaming_content) == read(asset.thumbnail.name)

    released = asset_release(asset=asset, approval=approval_for(asset))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content) == read(released.released_thumbnail.name)

    asset_release_withdraw(asset=asset, reason="lapsed")
    assert b"".join(client.get(url).streaming_content) == read(asset.thumbnail.name)


def test_it_shows_an_outsider_no_released_image(client, outsider, brand, asset):
    asset_release(asset=asset, approval=approval_for(asset))
    client.force_login(outsider)
    assert client.get(reverse("asset-image", args=[brand.slug, asset.pk])).status_code == 404


def test_it_names_downloads_draft_only_until_released(brand, asset):
    names = {kind: asset_download_name(brand=brand, asset=asset, kind=kind) for kind in ("master", "web", "thumbnail")}
    assert names == {
        "master": f"acme-ava-{asset.pk}-master-draft.png",
        "web": f"acme-ava-{asset.pk}-web-draft.jpg",
        "thumbnail": f"acme-ava-{asset.pk}-thumbnail-draft.webp",
    }
    released = asset_release(asset=asset, approval=approval_for(asset))
    assert asset_download_name(brand=brand, asset=released, kind="master") == f"acme-ava-{asset.pk}-master.png"
    assert asset_download_name(brand=brand, asset=released, kind="web") == f"acme-ava-{asset.pk}-web.jpg"


def test_it_audits_the_release_with_the_approval_it_was_made_under(brand, asset):
    approval = approval_for(asset, approved_by=["rita", "sam"])
    released = asset_release(asset=asset, approval=approval)

    [event] = AuditEvent.objects.for_brand(brand).filter(action="asset.released")
    assert event.target_id == str(asset.pk) and event.actor is None and event.before is None
    assert event.after == approval | {
        "image": released.released_image.name,
        "web": released.released_web.name,
        "thumbnail": released.released_thumbnail.name,
    }
    assert Asset.objects.for_brand(brand).get(pk=asset.pk).metadata["release"] == {"approval": approval}
