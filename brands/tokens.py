"""The raw form of API tokens: `ps_live_<key_id>_<secret>`.

key_id is public (shown in lists, used to find the row); the secret is
secrets.token_urlsafe(32), 256 random bits. Only sha256 of the whole raw token
is stored: with that much entropy a fast hash cannot be brute-forced, and a
database reader learns nothing that authenticates."""

import hashlib
import hmac
import re
import secrets

PREFIX = "ps_live_"
# Lowercase hex: never contains "_", so the first "_" after the prefix ends it.
KEY_ID_BYTES = 6
KEY_ID = re.compile(r"[0-9a-f]{12}\Z")
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
SECRET = re.compile(r"[A-Za-z0-9_-]{43}\Z")
RAW_MAX_LENGTH = len(PREFIX) + 12 + 1 + 43
# Compared against when no row matches, so an unknown key_id costs the same
# hashing and comparison as a wrong secret.
_NO_HASH = "0" * 64


def token_generate(key_id=None):
    """(key_id, raw) for a new token; pass key_id to keep one already chosen."""
    key_id = key_id or secrets.token_hex(KEY_ID_BYTES)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def token_hash(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def token_key_id(raw):
    """The key_id of a well-formed raw token; None for anything else."""
    if not isinstance(raw, str) or len(raw) != RAW_MAX_LENGTH or not raw.startswith(PREFIX):
        return None
    key_id, separator, secret = raw[len(PREFIX) :].partition("_")
    if not separator or not KEY_ID.match(key_id) or not SECRET.match(secret):
        return None
    return key_id


def token_matches(raw, secret_hash):
    """Constant-time comparison of the raw token's hash with a stored one (or None)."""
    return hmac.compare_digest(token_hash(raw), secret_hash or _NO_HASH)


def token_display(key_id):
    """How lists show a token: enough to recognise it, nothing that authenticates."""
    return f"{PREFIX}{key_id}…"
