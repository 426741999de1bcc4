"""Channel connectors: one class per kind of channel, behind one interface.

A connector gets a PublishRequest (the post, its caption, the approved file's
bytes and an idempotency key) and answers a PublishResult; it never touches
the database. publishing.services claims the post, calls `publish`, logs the
result (PublishAttempt) and retries with backoff when the result says it may.

The idempotency key is the same on every attempt of a post: a channel must
treat a second request carrying it as the first (webhook receivers dedupe on
webhook-id; the export writes to names made from it; a network's API takes it
as its idempotency header or client reference).

Adding a network = a subclass registered under a new kind, whose `publish`
calls that network's API (see tests/publishing/test_connectors.py: an
Instagram-like connector against a test double of its API); nothing else
changes.
"""

import base64
import hashlib
import json
import posixpath
import re
from dataclasses import asdict, dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from webhooks.network import UrlRefused, post, url_check
from webhooks.signing import SecretUnreadable, body_bytes, endpoint_secrets, signed_headers

from .conf import setting

EVENT = "post.published"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class PublishRequest:
    post_id: int
    idempotency_key: str
    brand: str  # slug
    channel: str  # name
    persona: str  # handle
    asset_id: int
    caption: str
    publish_at: str  # ISO 8601, UTC
    media: bytes = field(repr=False)
    mime: str = "image/png"
    file_name: str = ""
    content_sha256: str = ""  # of `media`

    def summary(self):
        """What a channel is told about the post, without the file's bytes."""
        data = asdict(self)
        del data["media"]
        return data


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    # A failure that may pass (timeout, 5xx, 429): tried again with backoff.
    retryable: bool = False
    status_code: int | None = None
    response: str = ""
    error: str = ""
    external_id: str = ""
    external_url: str = ""


class Connector:
    kind = ""
    label = ""

    def __init__(self, channel):
        self.channel = channel

    @classmethod
    def config_clean(cls, *, brand, config, webhook_endpoint):
        """The channel's config for this kind, checked; ValidationError with field names."""
        return dict(config or {})

    def publish(self, request: PublishRequest) -> PublishResult:
        raise NotImplementedError


CONNECTORS: dict[str, type[Connector]] = {}


def connector_register(cls):
    if not cls.kind or cls.kind in CONNECTORS and CONNECTORS[cls.kind] is not cls:
        raise ValueError(f"connector kind {cls.kind!r} is empty or taken")
    CONNECTORS[cls.kind] = cls
    return cls


def connector_class(kind):
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise ValidationError(
            {"kind": f"Unknown channel kind {kind!r}; known: {', '.join(sorted(CONNECTORS))}."}
        ) from None


def connector_for(channel):
    return connector_class(channel.kind)(channel)


def _response_ids(excerpt):
    try:
        answer = json.loads(excerpt)
    except ValueError:
        return "", ""
    if not isinstance(answer, dict):
        return "", ""
    return str(answer.get("id") or "")[:200], str(answer.get("url") or "")[:2000]


@connector_register
class WebhookConnector(Connector):
    """POSTs "post.published" to one of the brand's webhook endpoints, signed as
    the webhooks app signs (Standard Webhooks), through its SSRF guard. The body
    carries the approved file inline (base64) with its sha256; webhook-id is
    "post_" + the idempotency key, also sent as Idempotency-Key."""

    kind = "webhook"
    label = "Signed webhook"

    @classmethod
    def config_clean(cls, *, brand, config, webhook_endpoint):
        if webhook_endpoint is None:
            raise ValidationError({"webhook_endpoint": "Choose the webhook endpoint that receives the posts."})
        if webhook_endpoint.brand_id != brand.pk:
            raise ValidationError({"webhook_endpoint": "That endpoint is not one of this brand's."})
        return {}

    def publish(self, request):
        endpoint = self.channel.webhook_endpoint
        if endpoint is None or not endpoint.enabled:
            return PublishResult(ok=False, error="Not sent: the channel's webhook endpoint is disabled or gone.")
        message_id = "post_" + request.idempotency_key.replace("-", "")
        body = body_bytes(
            {
                "type": EVENT,
                "timestamp": request.publish_at,
                "data": {
                    **request.summary(),
                    "media_base64": base64.b64encode(request.media).decode("ascii"),
                },
            }
        )
        try:
            target = url_check(endpoint.url)
            headers = signed_headers(secrets_=endpoint_secrets(endpoint), message_id=message_id, body=body)
            headers["Idempotency-Key"] = request.idempotency_key
            response = post(target, body=body, headers=headers)
        except UrlRefused as exc:
            return PublishResult(ok=False, error=f"Not sent: {exc}")
        except SecretUnreadable as exc:
            return PublishResult(ok=False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - any network failure may pass
            return PublishResult(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
        code = response.status
        if 200 <= code < 300:
            external_id, external_url = _response_ids(response.excerpt)
            return PublishResult(
                ok=True,
                status_code=code,
                response=response.excerpt,
                external_id=external_id or message_id,
                external_url=external_url,
            )
        return PublishResult(
            ok=False,
            retryable=code >= 500 or code in RETRYABLE_STATUSES,
            status_code=code,
            response=response.excerpt,
            error=f"The endpoint answered HTTP {code}.",
        )


PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


@connector_register
class ExportConnector(Connector):
    """Writes the approved file and a JSON of the post (caption, disclosure,
    sha256) through Django's storage API (PUBLISHING_EXPORT_STORAGE: the local
    disk or a bucket) under config["prefix"]/<brand>/<yyyy>/<mm>/<dd>/. The names
    hold the idempotency key; the JSON is written last and marks the export done,
    so a retry after it finds it and writes nothing."""

    kind = "export"
    label = "File / bucket export"

    @classmethod
    def config_clean(cls, *, brand, config, webhook_endpoint):
        prefix = str((config or {}).get("prefix") or "exports").strip("/")
        if not PREFIX.match(prefix) or ".." in prefix.split("/"):
            raise ValidationError({"config": "The prefix is a relative folder of letters, digits, . _ - and /."})
        return {"prefix": prefix}

    def names(self, request):
        day = request.publish_at[:10].replace("-", "/")
        stem = posixpath.join(
            self.channel.config.get("prefix") or "exports",
            request.brand,
            day,
            f"post-{request.post_id}-{request.idempotency_key}",
        )
        extension = posixpath.splitext(request.file_name)[1] or ".png"
        return f"{stem}{extension}", f"{stem}.json"

    def publish(self, request):
        storage = storages[setting("PUBLISHING_EXPORT_STORAGE")]
        image_name, json_name = self.names(request)
        try:
            if storage.exists(json_name):
                return PublishResult(ok=True, response="Already exported.", external_id=json_name)
            if storage.exists(image_name):  # an attempt that stopped before its JSON
                storage.delete(image_name)
            saved = storage.save(image_name, ContentFile(request.media))
            document = {
                **request.summary(),
                "file": posixpath.basename(saved),
                "sha256": hashlib.sha256(request.media).hexdigest(),
            }
            saved_json = storage.save(json_name, ContentFile(json.dumps(document, indent=2).encode("utf-8")))
        except Exception as exc:  # noqa: BLE001 - storage failures (disk, bucket) may pass
            return PublishResult(ok=False, retryable=True, error=f"Storage: {type(exc).__name__}: {exc}")
        if saved != image_name or saved_json != json_name:
            return PublishResult(ok=False, error=f"Storage renamed the export ({saved}, {saved_json}).")
        return PublishResult(ok=True, response=f"Wrote {saved} and {saved_json}.", external_id=saved_json)
