"""Endpoint secrets and the Standard Webhooks signature headers.

A secret is "whsec_" + base64 of 32 random bytes, shown to its owner once and
stored only encrypted, with the Fernet key content.c2pa derives from SECRET_KEY
(SECRET_KEY_FALLBACKS still decrypt, so SECRET_KEY rotates the Django way)."""

import base64
import json
import secrets

from cryptography.fernet import InvalidToken
from django.utils import timezone
from standardwebhooks import Webhook

from content.c2pa import _fernet

SECRET_PREFIX = "whsec_"


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted with SECRET_KEY or its fallbacks."""


def secret_generate():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_encrypt(secret):
    return _fernet().encrypt(secret.encode("ascii"))


def secret_decrypt(token):
    try:
        return _fernet().decrypt(bytes(token)).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable(
            "The endpoint's secret cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS: "
            "if SECRET_KEY changed, add the previous one to SECRET_KEY_FALLBACKS, or rotate the secret."
        ) from None


def endpoint_secrets(endpoint, now=None):
    """The secrets that sign now: the current one, and the previous one while its
    rotation overlap lasts."""
    signing = [secret_decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_active(now):
        signing.append(secret_decrypt(endpoint.previous_secret_encrypted))
    return signing


def body_bytes(body):
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def signed_headers(*, secrets_, message_id, body, now=None):
    """webhook-id, webhook-timestamp and webhook-signature for `body` (bytes): one
    "v1,<base64>" signature per secret, space-separated, as the scheme allows, so a
    receiver holding either secret verifies during a rotation."""
    now = now or timezone.now()
    signatures = [Webhook(secret).sign(message_id, now, body) for secret in secrets_]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
