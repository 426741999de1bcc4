"""Schedule math: cron on the zone's wall clock across daylight-saving changes,
intervals in elapsed time, caption templates."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from publishing import timing
from publishing.captions import caption_render, template_check

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_it_reads_cron_on_the_wall_clock_of_the_zone():
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert timing.cron_next("0 9 * * *", zone=BERLIN, after=utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 8)
    assert timing.cron_next("0 9 * * *", zone=BERLIN, after=utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 7)


def test_it_runs_a_daily_time_across_the_spring_change_at_the_same_wall_time():
    runs = timing.runs_between(
        lambda t: timing.cron_next("0 9 * * *", zone=BERLIN, after=t),
        start=utc(2026, 3, 28, 8),
        end=utc(2026, 3, 30, 23),
    )
    assert [run.astimezone(BERLIN).strftime("%d %H:%M") for run in runs] == ["28 09:00", "29 09:00", "30 09:00"]
    assert runs[1] - runs[0] == timedelta(hours=23)


def test_it_runs_a_time_that_does_not_exist_once_right_after_the_gap():
    # 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 never happens.
    run = timing.cron_next("30 2 * * *", zone=BERLIN, after=utc(2026, 3, 28, 23))
    assert run == utc(2026, 3, 29, 1)
    assert run.astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"
    following = timing.cron_next("30 2 * * *", zone=BERLIN, after=run)
    assert following == utc(2026, 3, 30, 0, 30)


def test_it_runs_the_skipped_quarter_hours_once_and_carries_on():
    runs = timing.runs_between(
        lambda t: timing.cron_next("*/15 * * * *", zone=BERLIN, after=t),
        start=utc(2026, 3, 29, 0, 45),
        end=utc(2026, 3, 29, 1, 30),
    )
    walls = [run.astimezone(BERLIN).strftime("%H:%M") for run in runs]
    assert walls == ["01:45", "03:00", "03:15", "03:30"]


def test_it_runs_a_time_that_happens_twice_once_at_its_first_occurrence():
    # 25 October 2026, Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    first = timing.cron_next("30 2 * * *", zone=BERLIN, after=utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    following = timing.cron_next("30 2 * * *", zone=BERLIN, after=first)
    assert following == utc(2026, 10, 26, 1, 30)  # next day, not 02:30 CET an hour later


def test_it_does_not_run_again_in_the_repeated_hour_when_asked_from_inside_it():
    inside_second_pass = utc(2026, 11, 1, 6, 10)  # 01:10 EST, the second 01:10 in New York
    run = timing.cron_next("15 1 * * *", zone=NEW_YORK, after=inside_second_pass)
    assert run == utc(2026, 11, 2, 6, 15)


def test_it_counts_intervals_in_elapsed_time_across_a_change():
    anchor = utc(2026, 3, 28, 8)
    runs = timing.runs_between(
        lambda t: timing.interval_next(seconds=86400, anchor=anchor, after=t), start=anchor, end=utc(2026, 3, 30, 9)
    )
    assert [b - a for a, b in zip(runs, runs[1:], strict=False)] == [timedelta(days=1)] * 2
    assert timing.interval_next(seconds=3600, anchor=anchor, after=utc(2026, 3, 28, 9, 30)) == utc(2026, 3, 28, 10)
    assert timing.interval_next(seconds=3600, anchor=anchor, after=utc(2026, 1, 1)) == anchor


@pytest.mark.parametrize("expression", ["", "0 9 * *", "61 * * * *", "0 9 30 2 *", "every day"])
def test_it_refuses_cron_expressions_it_cannot_read_or_that_never_match(expression):
    with pytest.raises(ValueError):
        timing.cron_check(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "CET+1", "", None, "local"])
def test_it_refuses_what_is_not_an_iana_zone(name):
    with pytest.raises(ValueError):
        timing.zone_get(name)


def test_it_fills_caption_templates_and_refuses_unknown_placeholders():
    template = template_check("{persona} in {look} on {date} #AI-generated {{not a field}}")
    caption = caption_render(template, persona="Ava", look="", date="2026-03-29")
    assert caption == "Ava in on 2026-03-29 #AI-generated {not a field}"
    for bad in ("{name} says hi", "{persona.__class__}", "{persona!r}", "{date:%Y}", "{persona", "", "{0}"):
        with pytest.raises(ValueError):
            template_check(bad)
