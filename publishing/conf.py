"""PUBLISHING_* settings with their defaults (config/settings.py sets each from the environment)."""

from django.conf import settings

DEFAULTS = {
    # A file holding seconds to add to real time (publishing/clock.py); tests only.
    "PUBLISHING_CLOCK_FILE": "",
    # How often beat sends publishing.tick.
    "PUBLISHING_TICK_SECONDS": 60.0,
    # A run found due later than this was missed (beat was down): the schedule's
    # missed-run policy decides; earlier it is merely a late tick and runs.
    "PUBLISHING_MISSED_GRACE_SECONDS": 180,
    # A post still unpublished this long after its publish_at lapses with its approval.
    "PUBLISHING_LAPSE_AFTER_SECONDS": 3600,
    # Attempts of a post before it fails; the n-th failed one waits
    # min(BASE * 4**(n-1), MAX) seconds (30 s, 2 min, 8 min, 30 min, ...).
    "PUBLISHING_MAX_ATTEMPTS": 6,
    "PUBLISHING_RETRY_BASE_SECONDS": 30,
    "PUBLISHING_RETRY_MAX_SECONDS": 1800,
    # The STORAGES alias the export connector writes through.
    "PUBLISHING_EXPORT_STORAGE": "default",
}


def setting(name):
    return getattr(settings, name, DEFAULTS[name])
