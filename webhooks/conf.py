"""WEBHOOKS_* settings with their defaults (config/settings.py may override each,
most from the environment)."""

from django.conf import settings

DEFAULTS = {
    # Let endpoints resolve to private, loopback or link-local addresses (tests, a
    # receiver on the same private network). Never in a shared production.
    "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": False,
    "WEBHOOKS_TIMEOUT_SECONDS": 10.0,
    "WEBHOOKS_MAX_ATTEMPTS": 8,
    # The n-th failed attempt waits min(BASE * 4**(n-1), MAX) before the next one:
    # 30 s, 2 min, 8 min, 32 min, 2 h 8 min, 6 h, 6 h (about 15 h in all).
    "WEBHOOKS_RETRY_BASE_SECONDS": 30,
    "WEBHOOKS_RETRY_MAX_SECONDS": 6 * 3600,
    # An endpoint is disabled once this many attempts in a row failed and the first
    # of them is at least this old (a brief outage, however busy, never disables one).
    "WEBHOOKS_DISABLE_AFTER_FAILURES": 20,
    "WEBHOOKS_DISABLE_AFTER_SECONDS": 24 * 3600,
}


def setting(name):
    return getattr(settings, name, DEFAULTS[name])
