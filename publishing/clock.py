"""The one clock of publishing: every service and task asks `now()`, never
timezone.now(), so tests can move time in real beat and worker processes.

The clock is real time plus an offset in seconds, read from the file named by
the PUBLISHING_CLOCK_FILE setting (environment variable of the same name) on
every call: a test writes "3600" there and beat, worker and test process all
live an hour ahead at once, with time still flowing (beat keeps ticking). No
file, an empty one or no setting: real time. Production leaves it unset.

In one process a test may also freeze the clock at an instant (`frozen`),
which wins over the file.
"""

import contextlib
import os
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

_frozen = []


def offset_file():
    return getattr(settings, "PUBLISHING_CLOCK_FILE", "") or os.environ.get("PUBLISHING_CLOCK_FILE", "")


def offset_seconds():
    path = offset_file()
    if not path:
        return 0.0
    try:
        with open(path) as stored:
            text = stored.read().strip()
    except FileNotFoundError:
        return 0.0
    return float(text) if text else 0.0


def now():
    """The current instant (aware, UTC) as publishing sees it."""
    if _frozen:
        return _frozen[-1]
    moved = offset_seconds()
    current = timezone.now()
    return current + timedelta(seconds=moved) if moved else current


def offset_set(seconds):
    """Move every process sharing the clock file `seconds` away from real time."""
    path = offset_file()
    if not path:
        raise RuntimeError("PUBLISHING_CLOCK_FILE is not set: the clock cannot be moved")
    with open(f"{path}.tmp", "w") as stored:
        stored.write(repr(float(seconds)))
    os.replace(f"{path}.tmp", path)


def travel_to(instant):
    """Set the shared offset so that now() reads `instant` (then flows on)."""
    offset_set((instant - timezone.now()).total_seconds())


@contextlib.contextmanager
def frozen(instant):
    """now() returns `instant` in this process until the block ends."""
    if instant.tzinfo is None:
        raise ValueError("freeze the clock at an aware instant")
    _frozen.append(instant.astimezone(UTC))
    try:
        yield
    finally:
        _frozen.pop()


def utc(*args):
    return datetime(*args, tzinfo=UTC)
