"""When a schedule runs: cron expressions read on the wall clock of the
schedule's IANA time zone, intervals counted in elapsed time; every instant
returned is aware UTC (what is stored).

Wall-clock rules at daylight-saving changes (those of Vixie cron):
- a time that does not exist (the hour skipped in spring) runs once, at the
  first instant after the gap: "30 2 * * *" in Europe/Berlin on the last
  Sunday of March runs at 03:00 CEST; several skipped times run once there;
- a time that happens twice (the hour repeated in autumn) runs once, at its
  first occurrence.
An interval ignores the wall clock: "every 24 h" is 24 elapsed hours, so it
moves by an hour on the wall clock across a change; use cron for "every day
at 09:00".
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter

# A cron expression matching nothing (30 February) is refused after this many candidates.
SEARCH_LIMIT = 2000
INTERVAL_MIN_SECONDS = 60
INTERVAL_MAX_SECONDS = 366 * 24 * 3600


def zone_get(name):
    """The ZoneInfo for an IANA name; ValueError for anything else (no "local", no offsets)."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC).")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone.") from None


_ZONES = None


def _zone_names():
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def cron_check(expression):
    """The expression, normalised; ValueError in words when croniter cannot read it
    or it never matches."""
    expression = " ".join(str(expression or "").split())
    if len(expression.split()) != 5:
        raise ValueError("A cron expression has five fields: minute hour day-of-month month day-of-week.")
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a valid cron expression.")
    try:
        cron_next(expression, zone=ZoneInfo("UTC"), after=datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError:
        raise ValueError(f"{expression!r} never matches a date.") from None
    return expression


def wall_to_utc(naive, zone):
    """The UTC instant of a wall-clock time in `zone` under the rules above."""
    first = naive.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant  # exists (its first occurrence, if it happens twice)
    # In a gap: fold=0 read it with the offset before the change, which lands after
    # the gap by the gap's length; the gap ends at the change itself.
    return _gap_end(naive, zone)


def _gap_end(naive, zone):
    # The change happens within a day of the wall time; find the first instant whose
    # wall time is past `naive` by bisecting on UTC minutes around it.
    low = naive.replace(tzinfo=zone, fold=0).astimezone(UTC) - timedelta(hours=26)
    high = low + timedelta(hours=52)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def cron_next(expression, *, zone, after):
    """The first run strictly after `after` (aware) for a cron expression read in `zone`."""
    local = after.astimezone(zone).replace(tzinfo=None)
    # Start an hour earlier on the wall clock: in a repeated hour the next matching
    # wall time may lie behind the current one and still be ahead in real time.
    iterator = croniter(expression, local - timedelta(hours=2))
    for _ in range(SEARCH_LIMIT):
        candidate = wall_to_utc(iterator.get_next(datetime), zone)
        if candidate > after:
            return candidate
    raise ValueError(f"{expression!r} matched no time after {after.isoformat()}")


def interval_next(*, seconds, anchor, after):
    """The first anchor + k·seconds (k ≥ 0) strictly after `after`."""
    if after < anchor:
        return anchor
    steps = int((after - anchor).total_seconds() // seconds) + 1
    return anchor + timedelta(seconds=steps * seconds)


def runs_between(next_fn, *, start, end, limit=SEARCH_LIMIT):
    """Run instants from `start` (a run time itself) up to and including `end`."""
    runs, current = [], start
    while current <= end and len(runs) < limit:
        runs.append(current)
        current = next_fn(current)
    return runs
