"""C2PA manifests (Content Credentials) for rendered images, signed with the brand's own key.

Signing
-------
``c2pa_sign(image_bytes, *, mime, brand, generator, persona, title, draft=True)`` returns the
PNG, JPEG or WebP with a C2PA manifest store embedded (c2pa-python, i.e. c2pa-rs: a ``caBX``
chunk in a PNG, ``APP11`` segments in a JPEG, a ``C2PA`` chunk in a WebP). Its one manifest
holds:

- ``c2pa.actions`` (c2pa writes it as ``c2pa.actions.v2``): one ``c2pa.created`` action with
  ``digitalSourceType`` IPTC ``trainedAlgorithmicMedia`` and ``softwareAgent`` naming the
  generator (the model's slug);
- ``com.personastudio.provenance``: ``{"generator", "persona", "brand", "draft"}``, the facts the
  XMP disclosure (content.formats) carries as ``ps:`` fields;
- ``c2pa.hash.data``, added by c2pa: the SHA-256 of every byte of the file outside the manifest
  store itself, so pixels, XMP disclosure and any other chunk are all covered.

``claim_generator_info`` names Persona Studio and ``title`` the file. No thumbnail is embedded:
the picture is its own thumbnail, and c2pa's default one made a 64 px master 15 times larger (4 KB to
67 KB) and cost about 65 ms a file. Without it a signature adds about 3.4 KB and 3-4 ms to a
file on one CPU core, whatever its size (a 64 px master, a 1080 x 1350 PNG of 240 KB, the web
JPEG, the WebP thumbnail), so about 11 ms an asset for its three files; making a brand's key
takes under a millisecond. No timestamp authority is asked (workers need not reach the
internet), so the manifest carries no trusted signing time and a validator checks the
certificate against the time it validates.

Sign last: the disclosure's XMP packet has to be in the file before it is signed, because
splicing it in afterwards changes hashed bytes and the manifest then reads ``Invalid``.

Releasing
---------
An approved asset gets new files without the DRAFT mark (content.services.asset_release), each
signed by ``c2pa_sign_release`` with the same brand key: a NEW manifest whose parent ingredient
(``relationship: parentOf``) is the file it comes from, the draft master for the approved master
and the approved master for its web JPEG and thumbnail. c2pa copies the parent's manifest store
into the new one, so a verifier reads the whole chain: approved web -> approved master -> draft
master (``c2pa.created``, trainedAlgorithmicMedia). The new manifest holds:

- ``c2pa.actions``: ``c2pa.opened`` naming the parent, ``c2pa.edited.metadata`` (master: same
  pixels, disclosure no longer a draft) or ``c2pa.transcoded`` (web, thumbnail), and
  ``c2pa.published`` with ``when`` = the approval's time and a description naming the approvers;
- ``com.personastudio.provenance`` as in a draft, with ``draft`` false;
- ``com.personastudio.approval``: the approval as given (review id, approvers, time, workflow,
  revision, the draft master's sha256, which the parent ingredient's hash also pins).

Read with the brand's root as trust anchor it is ``Trusted``, and ``ingredientDeltas`` say the
parent's manifest validated and is trusted too.

The key
-------
Each brand has one ``BrandSigningKey``, made the first time something is signed for it
(``brand_signing_key_get_or_create``; two workers racing for it end up with one row, the
unique brand column decides): a P-256 key pair and a chain of two certificates, both ES256
(ecdsa-with-SHA256), valid for ``CERTIFICATE_YEARS`` from an hour before creation:

- the brand's root: self-signed, ``O=<brand name>`` (cut to X.509's 64 bytes), CA with path length 0, key usage
  keyCertSign and cRLSign. Its private key signs the next certificate and is then dropped,
  never stored: nobody, we included, can issue another certificate under it.
- the signing certificate, issued by that root: not a CA, key usage digitalSignature
  (critical), extended key usage emailProtection and documentSigning, subject and authority
  key identifiers.

What c2pa-rs 0.91 (c2pa-python 0.38) accepts, tried one by one: a self-signed signing
certificate is refused, so is one whose extended key usage is serverAuth or
anyExtendedKeyUsage; documentSigning alone, or C2PA's own claimSigning alone, is refused
("certificate missing required EKU") because its default trust configuration lists
emailProtection; emailProtection passes, with or without documentSigning beside it (which the
C2PA specification also names). c2pa verifies every manifest it writes, so a certificate it
refuses makes ``c2pa_sign`` raise instead of returning a file that reads ``Invalid``.

The private key is stored encrypted: a Fernet token (AES-128-CBC with HMAC-SHA256) under a key
derived with HKDF-SHA256 from ``SECRET_KEY``; keys derived from ``SECRET_KEY_FALLBACKS`` still
decrypt, so ``SECRET_KEY`` is rotated the way Django rotates it (move the old one to the
fallbacks). A brand key that no configured secret decrypts makes signing fail with a message
that says so (``SigningFailed``); it is never replaced silently.

Verifying
---------
``c2pa_read(image_bytes, *, mime, trust_anchors=None)`` returns the manifest store as c2pa's
``Reader`` reports it (``active_manifest``, ``manifests``, ``validation_status``,
``validation_results``, ``validation_state``), or None for a file without one. c2pa checks the
claim signature against the signing certificate embedded in the manifest, that certificate's
chain and profile, and every hash. ``validation_state`` then reads:

- ``"Valid"`` for an untouched file read without trust anchors: the signature and every hash
  check out; ``validation_status`` lists exactly one code, ``signingCredential.untrusted``,
  because the chain ends in the brand's own root, which no public trust list holds;
- ``"Trusted"`` when the verifier passes the brand's root certificate as a trust anchor
  (``brand_trust_anchor(brand=...)``; c2patool's ``trust.user_anchors`` setting does the same);
  ``validation_status`` is then absent;
- ``"Invalid"`` once a hashed byte changed: ``assertion.dataHash.mismatch`` joins the list.

c2patool, built on the same c2pa-rs, reports the same codes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
from dataclasses import dataclass

import c2pa
from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from django.conf import settings
from django.db import transaction

from audit.services import audit_record

from .formats import TRAINED_ALGORITHMIC_MEDIA
from .models import BrandSigningKey

MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
CLAIM_GENERATOR = "Persona Studio"
PROVENANCE_LABEL = "com.personastudio.provenance"
# The approval an approved file was released under (c2pa_sign_release).
APPROVAL_LABEL = "com.personastudio.approval"
APPROVAL_KEYS = ("review_id", "approved_by", "approved_at", "workflow", "revision", "content_sha256")
# The ingredient label c2pa.opened points at.
PARENT_INGREDIENT = "parent"
CERTIFICATE_YEARS = 10
# Not yet in cryptography's ExtendedKeyUsageOID.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# Changing it makes every stored brand key undecryptable.
HKDF_INFO = b"persona-studio c2pa brand signing key v1"
# X.509's upper bound for a common or organization name; cryptography counts it in
# UTF-8 bytes.
NAME_MAX_BYTES = 64

BUILDER_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}
# A file could point at a remote manifest; reading it must not make us fetch a URL.
READER_SETTINGS = {"verify": {"remote_manifest_fetch": False}}


class SigningFailed(Exception):
    """An image could not be signed: the brand's key is unreadable or c2pa refused it."""


def c2pa_sign(
    image_bytes: bytes,
    *,
    mime: str,
    brand,
    generator: str,
    persona: str,
    title: str,
    draft: bool = True,
    signer: BrandSigner | None = None,
) -> bytes:
    """``image_bytes`` (PNG, JPEG or WebP, named by ``mime``) with a C2PA manifest signed
    with ``brand``'s key (``signer``, from brand_signer_get, or read now and made first
    if the brand has none). Raises ValueError for bad arguments and SigningFailed when the
    key cannot be used. With ``signer`` given it touches no database, so threads may sign."""
    if mime not in MIME_TYPES:
        raise ValueError(f"cannot sign {mime!r}; allowed: {', '.join(sorted(MIME_TYPES))}")
    for name, value in (("generator", generator), ("persona", persona), ("title", title)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a C2PA manifest needs a non-empty {name}")
    signer = signer or brand_signer_get(brand=brand)
    manifest = {
        "claim_generator_info": [{"name": CLAIM_GENERATOR}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": generator},
                        }
                    ]
                },
            },
            {
                "label": PROVENANCE_LABEL,
                "data": {"generator": generator, "persona": persona, "brand": brand.name, "draft": bool(draft)},
            },
        ],
    }
    return _builder_sign(image_bytes, mime=mime, manifest=manifest, brand=brand, signer=signer)


def c2pa_sign_release(
    image_bytes: bytes,
    *,
    mime: str,
    brand,
    parent_bytes: bytes,
    parent_mime: str,
    parent_title: str,
    generator: str,
    persona: str,
    title: str,
    approval: dict,
    transcoded: bool = False,
    signer: BrandSigner | None = None,
) -> bytes:
    """``image_bytes``, an approved asset's file, with a new C2PA manifest signed with the
    brand's key whose parent ingredient is ``parent_bytes`` (a signed file of the same
    brand: the draft master, or for a derivative the approved master), so that the draft's
    own manifest travels inside the new store and a verifier sees both. ``approval`` is
    content.services.asset_release's dict; it is recorded whole under APPROVAL_LABEL.
    ``transcoded``: the file is the parent in another encoding or size (web JPEG,
    thumbnail), not the parent with only its metadata changed (the master).

    Raises ValueError for bad arguments and SigningFailed when the key cannot be used or
    c2pa refuses the parent."""
    if mime not in MIME_TYPES or parent_mime not in MIME_TYPES:
        raise ValueError(f"cannot sign {mime!r} from {parent_mime!r}; allowed: {', '.join(sorted(MIME_TYPES))}")
    names = {"generator": generator, "persona": persona, "title": title, "parent_title": parent_title}
    for name, value in names.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a C2PA manifest needs a non-empty {name}")
    missing = [key for key in APPROVAL_KEYS if key not in approval]
    if missing:
        raise ValueError(f"an approval needs {', '.join(missing)}")
    signer = signer or brand_signer_get(brand=brand)
    record = {key: approval[key] for key in APPROVAL_KEYS}
    approvers = ", ".join(str(name) for name in approval["approved_by"]) or "nobody named"
    # Actions, from the C2PA specification's list. c2pa.opened (required first when there
    # is a parent) names the draft. Then what changed: the master keeps its pixels and only
    # its XMP disclosure stops saying "draft", which is c2pa.edited.metadata; the web JPEG and
    # thumbnail are the approved master re-encoded and scaled, c2pa.transcoded (non-editorial
    # by the specification's definition: encoding and resolution, not content). Last
    # c2pa.published, "the asset was released to a wider audience": approval is exactly the
    # decision to let it out to the brand's channels. Not c2pa.edited: that declares an
    # editorial change to the content, and approving changes none.
    actions = [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_INGREDIENT]}},
        {"action": "c2pa.transcoded" if transcoded else "c2pa.edited.metadata"},
        {
            "action": "c2pa.published",
            "when": approval["approved_at"],
            "softwareAgent": {"name": CLAIM_GENERATOR},
            "description": f"Approved for publication by {approvers} "
            f"(review {approval['review_id']}, workflow {approval['workflow']} revision {approval['revision']})",
        },
    ]
    manifest = {
        "claim_generator_info": [{"name": CLAIM_GENERATOR}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {
                "label": PROVENANCE_LABEL,
                "data": {"generator": generator, "persona": persona, "brand": brand.name, "draft": False},
            },
            {"label": APPROVAL_LABEL, "data": record},
        ],
    }
    ingredient = {"title": parent_title, "relationship": "parentOf", "label": PARENT_INGREDIENT}
    return _builder_sign(
        image_bytes,
        mime=mime,
        manifest=manifest,
        brand=brand,
        signer=signer,
        ingredient=(ingredient, parent_mime, parent_bytes),
    )


def _builder_sign(image_bytes, *, mime, manifest, brand, signer, ingredient=None) -> bytes:
    signer_info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, signer.certificate_chain.encode("ascii"), signer.private_key_pem, None
    )
    builder_settings = BUILDER_SETTINGS
    if ingredient is not None:
        # c2pa validates the parent as it adds it and stores that result in the new
        # manifest; trusting the brand's own root makes it record "trusted" instead of
        # "signingCredential.untrusted" for our own draft.
        builder_settings = {**BUILDER_SETTINGS, "trust": {"user_anchors": _chain_root(signer.certificate_chain)}}
    out = io.BytesIO()
    try:
        with (
            c2pa.Context.from_dict(builder_settings) as context,
            c2pa.Signer.from_info(signer_info) as c2pa_signer,
            c2pa.Builder.from_json(manifest, context) as builder,
        ):
            if ingredient is not None:
                definition, ingredient_mime, ingredient_bytes = ingredient
                builder.add_ingredient(definition, ingredient_mime, io.BytesIO(ingredient_bytes))
            builder.sign(c2pa_signer, mime, io.BytesIO(image_bytes), out)
    except c2pa.C2paError as exc:
        raise SigningFailed(f"C2PA signing for brand {brand.slug} failed: {exc}") from exc
    return out.getvalue()


def _chain_root(certificate_chain: str) -> str:
    root = x509.load_pem_x509_certificates(certificate_chain.encode("ascii"))[-1]
    return root.public_bytes(serialization.Encoding.PEM).decode("ascii")


def c2pa_read(image_bytes: bytes, *, mime: str, trust_anchors: str | None = None) -> dict | None:
    """The file's C2PA manifest store as c2pa's Reader validates it, or None when it has
    none. ``trust_anchors``: PEM root certificates to trust (e.g. ``brand_trust_anchor``).
    Raises c2pa.C2paError for a manifest store c2pa cannot parse."""
    reader_settings = dict(READER_SETTINGS)
    if trust_anchors:
        reader_settings["trust"] = {"user_anchors": trust_anchors}
    with c2pa.Context.from_dict(reader_settings) as context:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(image_bytes), None, context)
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())


def brand_trust_anchor(*, brand) -> str | None:
    """The brand's root certificate (PEM), for verifiers to trust; None before its first
    signature."""
    key = BrandSigningKey.objects.for_brand(brand).first()
    if key is None:
        return None
    return _chain_root(key.certificate_chain)


@dataclass(frozen=True)
class BrandSigner:
    """A brand's signing key, decrypted: what c2pa_sign needs, with no database behind it."""

    certificate_chain: str
    private_key_pem: bytes


def brand_signer_get(*, brand) -> BrandSigner:
    """The brand's key (made first if it has none), decrypted; SigningFailed if it cannot be."""
    key = brand_signing_key_get_or_create(brand=brand)
    return BrandSigner(certificate_chain=key.certificate_chain, private_key_pem=_private_key_decrypt(key))


def brand_signing_key_get_or_create(*, brand) -> BrandSigningKey:
    """The brand's signing key, made and audited on first use."""
    keys = BrandSigningKey.objects.for_brand(brand)
    if (key := keys.first()) is not None:
        return key
    # Made outside the transaction (a few ms); a worker that loses the race below
    # throws its pair away unused.
    chain, private_key_pem = _key_pair_issue(brand_name=brand.name)
    with transaction.atomic():
        key, created = keys.get_or_create(
            brand=brand,
            defaults={
                "algorithm": BrandSigningKey.Algorithm.ES256,
                "certificate_chain": b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain).decode(
                    "ascii"
                ),
                "private_key_encrypted": _fernet().encrypt(private_key_pem),
            },
        )
        if created:
            signing = chain[0]
            audit_record(
                actor=None,
                brand=brand,
                action="brand_signing_key.created",
                target=key,
                after={
                    "algorithm": key.algorithm,
                    "certificate_sha256": hashlib.sha256(signing.public_bytes(serialization.Encoding.DER)).hexdigest(),
                    "not_after": signing.not_valid_after_utc.isoformat(),
                },
            )
    return key


def _key_pair_issue(*, brand_name: str) -> tuple[list[x509.Certificate], bytes]:
    """A new signing key (PKCS#8 PEM) and its chain [signing certificate, brand root]."""
    now = datetime.datetime.now(datetime.UTC)
    # Clocks of the workers that will use it may run a little behind this one's.
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=365 * CERTIFICATE_YEARS)

    def name(common_name):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _name_fit(brand_name)),
                x509.NameAttribute(NameOID.COMMON_NAME, _name_fit(common_name)),
            ]
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = name(f"{brand_name} content credentials root")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signing_key = ec.generate_private_key(ec.SECP256R1())
    signing = (
        x509.CertificateBuilder()
        .subject_name(name(f"{brand_name} content signing"))
        .issuer_name(root_name)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    private_key_pem = signing_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return [signing, root], private_key_pem


def _name_fit(value: str) -> str:
    return value.encode("utf-8")[:NAME_MAX_BYTES].decode("utf-8", "ignore")


def _key_usage(**bits) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: bits.get(name, False) for name in names})


def _private_key_decrypt(key: BrandSigningKey) -> bytes:
    try:
        return _fernet().decrypt(bytes(key.private_key_encrypted))
    except InvalidToken:
        raise SigningFailed(
            f"The C2PA signing key of brand {key.brand.slug} cannot be decrypted with SECRET_KEY or "
            "SECRET_KEY_FALLBACKS: if SECRET_KEY changed, add the previous one to SECRET_KEY_FALLBACKS"
        ) from None


def _fernet() -> MultiFernet:
    """Encrypts under SECRET_KEY; decrypts under it or any of SECRET_KEY_FALLBACKS."""
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets])


def _fernet_key(secret: str | bytes) -> bytes:
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(material)
    return base64.urlsafe_b64encode(derived)
