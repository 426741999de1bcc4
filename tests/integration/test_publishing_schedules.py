"""Scheduled runs on PostgreSQL: exactly once with concurrent ticks, and with
real `celery beat` processes (two at once, one restarted) and a real worker,
under a clock the test moves (publishing.clock, PUBLISHING_CLOCK_FILE)."""

import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction

from approvals.models import AssetReview, ReviewState
from campaigns.models import Campaign
from config.celery import app as celery_app
from publishing import clock
from publishing.models import CaptionDraft, Schedule, ScheduleRun
from publishing.services import schedule_create, schedule_run_due
from tests.integration.conftest import ROOT, celery_worker, database_url, process_stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def hourly(creator, brand, persona, **overrides):
    values = {
        "actor": creator,
        "brand": brand,
        "persona": persona,
        "name": "Hourly",
        "kind": "cron",
        "cron": "0 * * * *",
        "timezone": "Europe/Berlin",
        "formats": ["1:1"],
        "caption_templates": ["{persona} at {date} #AI-generated"],
        "images_per_run": 1,
    }
    return schedule_create(**{**values, **overrides})


def test_it_runs_a_due_time_once_when_eight_ticks_race(services, creator, brand, persona, memory_broker):
    schedule = hourly(creator, brand, persona)
    due = schedule.next_run_at
    barrier, made, errors = threading.Barrier(8), [], []

    def tick():
        try:
            barrier.wait()
            made.extend(schedule_run_due(now=due + timedelta(seconds=1)))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(made) == 1
    assert ScheduleRun.objects.unscoped().filter(schedule=schedule).count() == 1
    assert Campaign.objects.for_brand(brand).count() == 1


def test_it_skips_a_schedule_another_tick_holds_instead_of_waiting(services, creator, brand, persona, memory_broker):
    schedule = hourly(creator, brand, persona)
    due = schedule.next_run_at
    locked, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            Schedule.objects.unscoped().select_for_update().get(pk=schedule.pk)
            locked.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    locked.wait(10)
    assert schedule_run_due(now=due) == []  # returns at once: the row is skipped, not waited for
    release.set()
    thread.join()
    assert len(schedule_run_due(now=due)) == 1


@contextmanager
def celery_beat(*, log_path, schedule_path, env):
    """A real `celery beat` process sending the production schedule (the tick every
    PUBLISHING_TICK_SECONDS) to the test broker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url(), **env}
    command = [
        sys.executable, "-m", "celery", "-A", "tests.integration.celery_app", "beat",
        "--schedule", str(schedule_path), "--pidfile=", "--loglevel", "INFO",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(
            lambda: "beat: Starting" in log_path.read_text() or process.poll() is not None, timeout=60, what="beat"
        )
        if process.poll() is not None:
            pytest.fail(f"celery beat exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        yield process
    finally:
        process_stop(process)


def test_it_runs_each_due_time_once_with_two_beats_a_restart_and_a_real_worker(
    services, settings, tmp_path, creator, brand, persona
):
    settings.MEDIA_ROOT = tmp_path / "media"
    clock_file = tmp_path / "clock"
    settings.PUBLISHING_CLOCK_FILE = str(clock_file)
    celery_app.control.purge()
    env = {"PUBLISHING_CLOCK_FILE": str(clock_file), "PUBLISHING_TICK_SECONDS": "1"}
    schedule = hourly(creator, brand, persona, missed_policy="skip")
    first = schedule.next_run_at

    def runs():
        return list(ScheduleRun.objects.unscoped().filter(schedule=schedule).order_by("due_at"))

    with celery_worker(media=settings.MEDIA_ROOT, log_path=tmp_path / "worker.log", hostname="publishing", env=env):
        with (
            celery_beat(log_path=tmp_path / "beat-1.log", schedule_path=tmp_path / "beat-1", env=env),
            celery_beat(log_path=tmp_path / "beat-2.log", schedule_path=tmp_path / "beat-2", env=env) as second_beat,
        ):
            clock.travel_to(first + timedelta(seconds=5))
            [run] = wait_for(lambda: runs() or None, timeout=60, what="the first run")
            # Its image is rendered and goes to review, with its caption draft.
            wait_for(
                lambda: ScheduleRun.objects.unscoped().get(pk=run.pk).status == ScheduleRun.Status.IN_REVIEW,
                timeout=120,
                what="the run's images in review",
            )
            process_stop(second_beat)
            with celery_beat(log_path=tmp_path / "beat-3.log", schedule_path=tmp_path / "beat-2", env=env):
                wait_for(
                    lambda: "Sending due task publishing-tick" in (tmp_path / "beat-3.log").read_text(),
                    timeout=30,
                    what="restarted beat ticking",
                )
                clock.travel_to(first + timedelta(hours=1, seconds=5))
                wait_for(lambda: len(runs()) == 2 or None, timeout=60, what="the second run")
                # Beat down for three hours (here: time jumps); the schedule skips what it missed.
                clock.travel_to(first + timedelta(hours=4, minutes=30))
                wait_for(lambda: len(runs()) == 3 or None, timeout=60, what="the missed runs recorded")
                # Several more seconds of two beats ticking add nothing.
                ticks = (tmp_path / "beat-1.log").read_text().count("publishing-tick")
                wait_for(
                    lambda: (tmp_path / "beat-1.log").read_text().count("publishing-tick") >= ticks + 3,
                    timeout=30,
                    what="more ticks",
                )
    first_run, second_run, skipped = runs()
    assert [r.due_at for r in runs()] == [first, first + timedelta(hours=1), first + timedelta(hours=4)]
    assert first_run.status == "in_review" and second_run.status in ("submitted", "in_review")
    assert skipped.status == "skipped"
    assert skipped.missed == 3 and skipped.campaign is None
    assert Campaign.objects.for_brand(brand).count() == 2
    review = AssetReview.objects.for_brand(brand).get(asset__job__campaign_item__campaign=first_run.campaign)
    assert review.state == ReviewState.IN_REVIEW and review.submitted_by == creator
    draft = CaptionDraft.objects.for_brand(brand).get(asset=review.asset)
    assert draft.text.startswith("Ava at ") and draft.run == first_run
