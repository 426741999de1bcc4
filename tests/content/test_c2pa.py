"""content/c2pa.py: C2PA manifests signed with each brand's own key, read back and
validated with c2pa's own Reader."""

import hashlib
import io
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw

from audit.models import AuditEvent
from avatars.services import persona_render_submit
from brands.services import brand_create
from content import c2pa as content_c2pa
from content.c2pa import (
    PROVENANCE_LABEL,
    SigningFailed,
    brand_signing_key_get_or_create,
    brand_trust_anchor,
    c2pa_read,
    c2pa_sign,
)
from content.formats import TRAINED_ALGORITHMIC_MEDIA, disclosure_embed, disclosure_read
from content.models import Asset, BrandSigningKey
from generation.models import GenerationJob
from generation.services.jobs import generation_job_run

WHO = {"generator": "notionists-64", "persona": "@ava"}
UNTRUSTED = "signingCredential.untrusted"


def picture(size=64, ink=(0, 0, 0)):
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).ellipse((size // 4, size // 8, 3 * size // 4, size // 2), outline=ink, width=2)
    return image


def encode(image, fmt="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def disclosed(brand, image=None, fmt="PNG"):
    """What asset_files_save signs: a picture with its XMP disclosure already in."""
    return disclosure_embed(encode(image or picture(), fmt), fmt="master", brand=brand.name, **WHO)


def signed_png(brand, **options):
    return c2pa_sign(disclosed(brand), mime="image/png", brand=brand, title="ava.png", **WHO, **options)


def active(store):
    return store["manifests"][store["active_manifest"]]


def assertion(manifest, label):
    [found] = [a["data"] for a in manifest["assertions"] if a["label"] == label or a["label"].startswith(f"{label}.v")]
    return found


def status_codes(store):
    return [entry["code"] for entry in store.get("validation_status", [])]


def png_chunks(data):
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.append(data[position : position + 12 + length])
        position += 12 + length
    return chunks


def png_with_pixels_of(signed, other):
    """`signed` with its image data replaced by `other`'s: still a PNG any viewer opens,
    every chunk but the pixels (manifest, disclosure) as signed."""
    out, replaced = [], False
    for chunk in png_chunks(signed):
        if chunk[4:8] != b"IDAT":
            out.append(chunk)
        elif not replaced:
            out.extend(c for c in png_chunks(other) if c[4:8] == b"IDAT")
            replaced = True
    return signed[:8] + b"".join(out)


def test_it_signs_a_png_that_c2pas_reader_finds_valid_but_for_the_brands_own_root(brand):
    store = c2pa_read(signed_png(brand), mime="image/png")

    # A chain ending in the brand's own root is on no public trust list: c2pa says
    # "Valid" (signature and hashes check out) with that one failure, nothing else.
    assert store["validation_state"] == "Valid"
    assert status_codes(store) == [UNTRUSTED]
    results = store["validation_results"]["activeManifest"]
    assert [entry["code"] for entry in results["failure"]] == [UNTRUSTED]
    successes = {entry["code"] for entry in results["success"]}
    assert {"claimSignature.validated", "claimSignature.insideValidity", "assertion.dataHash.match"} <= successes
    signature = active(store)["signature_info"]
    assert (signature["alg"], signature["issuer"], signature["common_name"]) == (
        "Es256",
        "Acme",
        "Acme content signing",
    )


def test_it_is_trusted_by_a_verifier_that_trusts_the_brands_root(brand):
    data = signed_png(brand)
    store = c2pa_read(data, mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    assert store["validation_state"] == "Trusted"
    assert status_codes(store) == []
    assert store["validation_results"]["activeManifest"]["failure"] == []


def test_it_names_the_generator_persona_brand_and_trained_algorithmic_media(brand):
    manifest = active(c2pa_read(signed_png(brand, draft=False), mime="image/png"))

    [action] = assertion(manifest, "c2pa.actions")["actions"]
    assert action == {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": {"name": "notionists-64"},
    }
    assert assertion(manifest, PROVENANCE_LABEL) == {
        "generator": "notionists-64",
        "persona": "@ava",
        "brand": "Acme",
        "draft": False,
    }
    assert manifest["title"] == "ava.png"
    assert manifest["claim_generator_info"][0]["name"] == "Persona Studio"
    assert "thumbnail" not in manifest


def test_it_marks_a_manifest_a_draft_unless_told_otherwise(brand):
    manifest = active(c2pa_read(signed_png(brand), mime="image/png"))
    assert assertion(manifest, PROVENANCE_LABEL)["draft"] is True


def test_it_keeps_the_xmp_disclosure_and_the_pixels(brand):
    unsigned = disclosed(brand)
    signed = c2pa_sign(unsigned, mime="image/png", brand=brand, title="ava.png", **WHO)

    assert disclosure_read(signed) == disclosure_read(unsigned)
    assert disclosure_read(signed)["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    with Image.open(io.BytesIO(signed)) as image:
        assert image.tobytes() == picture().tobytes()


def test_it_reads_invalid_once_the_pixels_change(brand):
    signed = signed_png(brand)
    other = picture(ink=(200, 0, 0))
    tampered = png_with_pixels_of(signed, disclosed(brand, other))
    with Image.open(io.BytesIO(tampered)) as image:
        assert image.tobytes() == other.tobytes()  # a picture that opens fine

    store = c2pa_read(tampered, mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    assert store["validation_state"] == "Invalid"
    assert status_codes(store) == ["assertion.dataHash.mismatch"]


def test_it_reads_invalid_once_the_disclosure_is_rewritten(brand):
    rewritten = disclosure_embed(signed_png(brand), fmt="master", generator="other", persona="@ava", brand="Acme")
    store = c2pa_read(rewritten, mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    assert store["validation_state"] == "Invalid"
    assert set(status_codes(store)) == {"assertion.dataHash.mismatch"}


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_it_signs_jpeg_and_webp_keeping_their_disclosure(brand, fmt, mime):
    unsigned = disclosed(brand, picture(256), fmt)
    signed = c2pa_sign(unsigned, mime=mime, brand=brand, title="ava", **WHO)

    store = c2pa_read(signed, mime=mime, trust_anchors=brand_trust_anchor(brand=brand))
    assert store["validation_state"] == "Trusted"
    assert assertion(active(store), PROVENANCE_LABEL)["brand"] == "Acme"
    assert disclosure_read(signed) == disclosure_read(unsigned)
    with Image.open(io.BytesIO(signed)) as image:
        assert image.format == fmt and image.size == (256, 256)


def test_it_reads_none_from_a_file_without_a_manifest(brand):
    assert c2pa_read(disclosed(brand), mime="image/png") is None


def test_it_refuses_what_it_cannot_sign(brand):
    with pytest.raises(ValueError, match="cannot sign 'image/gif'"):
        c2pa_sign(b"GIF89a", mime="image/gif", brand=brand, title="x", **WHO)
    with pytest.raises(ValueError, match="non-empty persona"):
        c2pa_sign(disclosed(brand), mime="image/png", brand=brand, title="x", generator="g", persona=" ")


def test_it_makes_a_brands_key_on_first_use_only_and_audits_it(brand):
    assert not BrandSigningKey.objects.for_brand(brand).exists()
    assert brand_trust_anchor(brand=brand) is None

    signed_png(brand)
    signed_png(brand)

    key = BrandSigningKey.objects.for_brand(brand).get()
    assert brand_signing_key_get_or_create(brand=brand) == key
    events = AuditEvent.objects.for_brand(brand).filter(action="brand_signing_key.created")
    assert [event.target_id for event in events] == [str(key.pk)]
    [signing, _root] = x509.load_pem_x509_certificates(key.certificate_chain.encode())
    assert events[0].after["certificate_sha256"] == hashlib.sha256(signing.public_bytes(Encoding.DER)).hexdigest()


def test_it_issues_a_signing_certificate_under_the_brands_own_root(brand):
    key = brand_signing_key_get_or_create(brand=brand)
    signing, root = x509.load_pem_x509_certificates(key.certificate_chain.encode())

    assert key.algorithm == "es256"
    assert signing.issuer == root.subject == root.issuer
    root.public_key().verify(signing.signature, signing.tbs_certificate_bytes, signing.signature_algorithm_parameters)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert signing.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = signing.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    ekus = signing.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in ekus
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    assert brand_trust_anchor(brand=brand).startswith("-----BEGIN CERTIFICATE-----")


def test_it_stores_the_private_key_only_encrypted_under_the_secret_key(brand, settings):
    key = brand_signing_key_get_or_create(brand=brand)
    stored = bytes(BrandSigningKey.objects.for_brand(brand).values_list("private_key_encrypted", flat=True).get())
    assert b"PRIVATE KEY" not in stored and b"-----BEGIN" not in stored
    assert b"PRIVATE KEY" not in key.certificate_chain.encode()

    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(SigningFailed, match="cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS"):
        signed_png(brand)

    settings.SECRET_KEY_FALLBACKS = [old_secret]
    store = c2pa_read(signed_png(brand), mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    assert store["validation_state"] == "Trusted"


def test_it_gives_two_brands_different_keys(brand, other_brand):
    acme = brand_signing_key_get_or_create(brand=brand)
    other = brand_signing_key_get_or_create(brand=other_brand)
    assert acme.certificate_chain != other.certificate_chain
    assert bytes(acme.private_key_encrypted) != bytes(other.private_key_encrypted)

    data = c2pa_sign(disclosed(other_brand), mime="image/png", brand=other_brand, title="o.png", **WHO)
    # Signed by Other Co: not trusted by whoever trusts only Acme's root.
    store = c2pa_read(data, mime="image/png", trust_anchors=brand_trust_anchor(brand=brand))
    assert (store["validation_state"], status_codes(store)) == ("Valid", [UNTRUSTED])
    assert active(store)["signature_info"]["issuer"] == "Other Co"


def test_it_keeps_the_key_another_worker_made_first(brand, monkeypatch):
    issue = content_c2pa._key_pair_issue

    def issue_while_another_worker_commits(**kwargs):
        # The other worker's pair lands between our look-up and our insert.
        chain, private_key = issue(**kwargs)
        BrandSigningKey.objects.create(
            brand=brand, certificate_chain="theirs", private_key_encrypted=content_c2pa._fernet().encrypt(private_key)
        )
        return issue(**kwargs)

    monkeypatch.setattr(content_c2pa, "_key_pair_issue", issue_while_another_worker_commits)
    key = brand_signing_key_get_or_create(brand=brand)
    assert key.certificate_chain == "theirs"
    assert BrandSigningKey.objects.for_brand(brand).count() == 1
    assert not AuditEvent.objects.for_brand(brand).filter(action="brand_signing_key.created").exists()


def test_it_fits_a_long_brand_name_into_the_certificates(owner):
    name = "Ünïcode & <Co> " + "long name " * 10
    brand = brand_create(actor=owner, name=name, slug="long")
    store = c2pa_read(
        c2pa_sign(disclosed(brand), mime="image/png", brand=brand, title="x.png", **WHO),
        mime="image/png",
        trust_anchors=brand_trust_anchor(brand=brand),
    )
    assert store["validation_state"] == "Trusted"
    # 64 bytes of UTF-8, X.509's limit, cut between characters
    assert active(store)["signature_info"]["issuer"] == name.encode()[:64].decode(errors="ignore")
    assert assertion(active(store), PROVENANCE_LABEL)["brand"] == name


def test_it_signs_every_file_of_a_rendered_asset(owner, brand, persona, media_root):
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)
    assert generation_job_run(job_id=job.pk).result == "succeeded"
    asset = Asset.objects.for_brand(brand).get(job=job)
    anchor = brand_trust_anchor(brand=brand)

    master = (media_root / asset.image.name).read_bytes()
    assert asset.sha256 == hashlib.sha256(master).hexdigest()
    for name, mime in ((asset.image.name, "image/png"), (asset.web.name, "image/jpeg"),
                       (asset.thumbnail.name, "image/webp")):  # fmt: skip
        data = (media_root / name).read_bytes()
        assert status_codes(c2pa_read(data, mime=mime)) == [UNTRUSTED], name
        store = c2pa_read(data, mime=mime, trust_anchors=anchor)
        assert store["validation_state"] == "Trusted", name
        manifest = active(store)
        assert manifest["title"] == name.rpartition("/")[2]
        assert assertion(manifest, PROVENANCE_LABEL) == {
            "generator": persona.model.slug,
            "persona": "@ava",
            "brand": "Acme",
            "draft": True,
        }
        [action] = assertion(manifest, "c2pa.actions")["actions"]
        assert action["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        assert action["softwareAgent"]["name"] == persona.model.slug
        assert disclosure_read(data)["persona"] == "@ava"


def test_it_fails_the_job_readably_and_writes_nothing_when_it_cannot_sign(owner, brand, persona, media_root, settings):
    brand_signing_key_get_or_create(brand=brand)
    settings.SECRET_KEY = "rotated-without-fallback-" + "y" * 40
    job = persona_render_submit(actor=owner, brand=brand, persona=persona)

    assert generation_job_run(job_id=job.pk).result == "failed"
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED
    assert job.error.startswith("Signing the image failed: The C2PA signing key of brand acme cannot be decrypted")
    assert not Asset.objects.for_brand(brand).exists()
    assert not [path for path in media_root.rglob("*") if path.is_file()]
