"""A campaign survives its workers and its broker: real `celery worker`
processes on PostgreSQL and a private Redis, killed (-9), restarted, doubled
and starved, and every campaign item is still rendered exactly once; an item
that keeps killing its worker fails alone; items that fail or are cancelled
leave no files behind; a campaign of two models renders each in batches of
its own.

"Exactly once" is checked the same way after every scenario
(assert_each_item_rendered_once): each item's job succeeded, it has one asset
whose files are those of the job's last attempt, one success is recorded in
the audit log, no attempt of a job stored its files twice, and the files in
the worker's media folder are exactly the files the assets refer to: nothing
rendered twice, nothing a killed attempt wrote left behind.

Each test has its own `redis-server` (no persistence) on a free port, shared
by its workers and this process only, so that killing it, or a message a
dead worker held, touches nothing else. The worker app is
tests/integration/celery_app.py: noise seed 13 (a campaign's variant 13)
kills the pool process that renders it, and the store probe logs every
job's files once written and can hold them uncommitted for a while, so that
a test can kill a worker at that very point of a batch.
"""

import os
import shutil
import signal
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from avatars.services import persona_create_from_seed
from campaigns.models import CampaignItem
from campaigns.selectors import campaign_progress
from campaigns.services import campaign_cancel, campaign_submit
from content.models import Asset
from content.services import asset_file_names
from generation.models import GenerationJob
from generation.services import jobs as jobs_service
from generation.services.jobs import generation_jobs_dispatch_pending, generation_jobs_expire_leases
from generation.services.registry import generator_model_register
from tests.conftest import celery_broker
from tests.integration.celery_app import CLAIM_DELAY_ENV, CRASH_NOISE_SEED, STORE_DELAY_ENV, STORE_LOG_ENV
from tests.integration.conftest import RedisServer, celery_worker, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = GenerationJob.Status
# Generous: the machine may be a loaded 2-core box.
FINISH_TIMEOUT = 300


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture
def redis_server(services, settings, tmp_path, persona):
    """A private redis-server (not started yet) that this process publishes to.
    After `persona`: registering its model sends a task to the usual broker."""
    server = RedisServer(free_port(), tmp_path)
    settings.CELERY_BROKER_URL = server.url
    with celery_broker(server.url):
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class StoreProbe:
    """The workers' store probe (see celery_app.py): `delay(s)` holds each job's
    written files uncommitted for s seconds from the next store on;
    `stores()` lists every store so far as (job id, attempt, pid)."""

    def __init__(self, directory):
        self.delay_path, self.log_path = directory / "store-delay", directory / "stores.log"
        self.env = {STORE_DELAY_ENV: str(self.delay_path), STORE_LOG_ENV: str(self.log_path)}

    def delay(self, seconds):
        self.delay_path.write_text(str(seconds))

    def stores(self):
        if not self.log_path.exists():
            return []
        return [tuple(int(field) for field in line.split()) for line in self.log_path.read_text().splitlines()]


@pytest.fixture
def probe(tmp_path):
    return StoreProbe(tmp_path)


@pytest.fixture
def personas(owner, brand, persona):
    """Two personas of one model: their items batch together."""
    other = persona_create_from_seed(
        actor=owner, brand=brand, model=persona.model, seed=43, name="Bea", handle="bea", truncation_psi=0.7
    )
    return [persona, other]


def persona_of_own_model(*, owner, brand, checkpoint_dir, directory, slug, seed):
    """A persona of a model of its own: a copy of the test checkpoint in `directory`."""
    shutil.copytree(checkpoint_dir, directory / slug)
    # Registering sends a task once committed: to a broker nobody reads.
    with celery_broker("memory://"):
        model = generator_model_register(
            actor=None, name=slug, slug=slug, directory=str(directory / slug), licence_note="test"
        )
    return persona_create_from_seed(actor=owner, brand=brand, model=model, seed=seed, name=slug.title(), handle=slug)


def campaign_submitted(*, owner, brand, personas, variants):
    """personas × variants items in format 1:1, in that order (variant innermost)."""
    return campaign_submit(
        actor=owner,
        brand=brand,
        name="Launch",
        versions=[persona.current_version for persona in personas],
        formats=["1:1"],
        variants=variants,
    )


def start_worker(stack, *, name, server, media, probe, tmp_path, **env):
    return stack.enter_context(
        celery_worker(
            media=media,
            log_path=tmp_path / f"{name}.log",
            hostname=name,
            broker_url=server.url,
            env={**probe.env, **{key: str(value) for key, value in env.items()}},
        )
    )


def campaign_jobs(campaign):
    return GenerationJob.objects.unscoped().filter(campaign_item__campaign=campaign).order_by("pk")


def jobs_table(campaign):
    return "\n".join(
        f"  job {job.pk}: {job.status} attempts={job.attempts} by={job.claimed_by} "
        f"dispatched={job.dispatched_at is not None} {job.error[:100]}"
        for job in campaign_jobs(campaign)
    )


def logs(workers):
    return "\n".join(
        f"--- {Path(worker.log_path).name} ---\n{Path(worker.log_path).read_text(errors='replace')[-3000:]}"
        for worker in workers
    )


def wait_campaign_finished(campaign, workers, *, timeout=FINISH_TIMEOUT, tick=None):
    """Wait until every item is finished; `tick` runs on each poll (a beat stand-in)."""

    def finished():
        if tick is not None:
            tick()
        return campaign_progress(brand=campaign.brand, campaign=campaign).finished

    try:
        wait_for(finished, timeout=timeout, what=f"campaign {campaign.pk} to finish", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{jobs_table(campaign)}\n{logs(workers)}") from None


def wait_queue_drained(server):
    wait_for(
        lambda: server.client.llen("gpu") == 0 and server.client.hlen("unacked") == 0,
        timeout=60,
        what="the gpu queue to drain",
    )


def media_files(media):
    return {path.relative_to(media).as_posix() for path in Path(media).rglob("*") if path.is_file()}


def attempt_files(job):
    return set(asset_file_names(brand_slug=job.brand.slug, job_id=job.pk, attempt=job.attempts).values())


def assert_each_item_rendered_once(campaign, media, probe, *, failed_variants=()):
    """Every item's job succeeded (or, for `failed_variants`, failed) exactly
    once: one asset, of its last attempt, one recorded success, no attempt
    stored twice, and the media folder holds exactly the assets' files.
    Returns {job id: job}."""
    brand = campaign.brand
    items = list(CampaignItem.objects.for_brand(brand).filter(campaign=campaign).select_related("job", "job__brand"))
    assert items, "the campaign has no items"
    jobs = {item.job.pk: item.job for item in items}
    assets = list(Asset.objects.for_brand(brand).filter(job__in=list(jobs)))
    assets_per_job = Counter(asset.job_id for asset in assets)
    successes = Counter(
        AuditEvent.objects.for_brand(brand)
        .filter(action="generation_job.succeeded", target_id__in=[str(pk) for pk in jobs])
        .values_list("target_id", flat=True)
    )
    stores = Counter((job_id, attempt) for job_id, attempt, _pid in probe.stores())
    table = jobs_table(campaign)
    for item in items:
        job = item.job
        if item.variant in failed_variants:
            assert job.status == Status.FAILED, table
            assert assets_per_job[job.pk] == 0 and successes[str(job.pk)] == 0, table
        else:
            assert (job.status, job.error) == (Status.SUCCEEDED, ""), table
            assert assets_per_job[job.pk] == 1, f"job {job.pk} has {assets_per_job[job.pk]} assets\n{table}"
            assert successes[str(job.pk)] == 1, f"job {job.pk} succeeded {successes[str(job.pk)]} times\n{table}"
            assert stores[job.pk, job.attempts] == 1, f"job {job.pk}'s last attempt stored {stores}\n{table}"
    assert set(stores.values()) <= {1}, f"an attempt stored twice: {stores}"
    assert {job_id for job_id, _ in stores} <= set(jobs)
    for asset in assets:
        # The asset is its job's last attempt, under that attempt's fixed names.
        assert {asset.image.name, asset.web.name, asset.thumbnail.name} == attempt_files(jobs[asset.job_id])
    referenced = {name for asset in assets for name in (asset.image.name, asset.web.name, asset.thumbnail.name)}
    on_disk = media_files(media)
    assert on_disk == referenced, (
        f"orphan files: {sorted(on_disk - referenced)}; missing files: {sorted(referenced - on_disk)}\n{table}"
    )
    return jobs


def assert_each_job_stored_once(jobs, probe):
    """No job was rendered and stored more than once, by any attempt or worker."""
    stored = Counter(job_id for job_id, _attempt, _pid in probe.stores())
    assert stored == Counter(set(jobs)), f"stores per job: {stored}"


def pool_processes(worker):
    """The pids of a worker's pool processes (its children)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == worker.pid:
            pids.append(int(stat.parent.name))
    return pids


def claimant_pid(job):
    return int(job.claimed_by.rpartition(":")[2])


def mid_store(campaign, media, *, succeeded):
    """A running job of the campaign whose files are written but whose success is
    not committed (the store delay), once `succeeded` accepts the number of
    succeeded jobs; else None."""
    jobs = list(campaign_jobs(campaign).select_related("brand"))
    if not succeeded(sum(job.status == Status.SUCCEEDED for job in jobs)):
        return None
    for job in jobs:
        if job.status == Status.RUNNING and (Path(media) / sorted(attempt_files(job))[0]).exists():
            return job
    return None


def uncommitted_files(campaign, media):
    """Files on disk of jobs that have not succeeded (written by an attempt that
    has not committed, or never will)."""
    unfinished = [job for job in campaign_jobs(campaign).select_related("brand") if job.status != Status.SUCCEEDED]
    return {name for job in unfinished for name in attempt_files(job) if (Path(media) / name).exists()}


def gone(pid):
    """Not running: no such process, or a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


# --- the tests ---------------------------------------------------------------------


def test_it_renders_each_item_once_when_the_pool_process_is_killed_mid_batch(
    redis_server, media, probe, tmp_path, owner, brand, personas
):
    """kill -9 of the pool process while it stores a batch: the parent gets a new
    one, the delivery comes back, and each of the batch's unstored jobs is
    claimed again (its claimant is dead) and rendered alone; the stored ones
    are not rendered again; the killed attempt's written files are removed."""
    redis_server.start()
    probe.delay(3)  # the window in which the kill must land
    with ExitStack() as stack:
        worker = start_worker(stack, name="poolkill", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=8)  # 16 items
        caught = wait_for(
            lambda: mid_store(campaign, media, succeeded=lambda count: count >= 1),
            timeout=FINISH_TIMEOUT,
            what="a batch in the middle of storing",
            interval=0.05,
        )
        pid = claimant_pid(caught)
        assert pid in pool_processes(worker), f"job {caught.pk} is claimed by {caught.claimed_by}, not a pool process"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: gone(pid), timeout=30, what=f"pool process {pid} to die")

        # Killed mid-batch: some of its jobs stored, some claimed and not, and
        # files written for one whose success was never committed.
        batch = list(campaign_jobs(campaign).filter(claimed_by=caught.claimed_by))
        stored = {job.pk for job in batch if job.status == Status.SUCCEEDED}
        lost = {job.pk for job in batch if job.status == Status.RUNNING}
        assert stored and lost, jobs_table(campaign)
        leftovers = uncommitted_files(campaign, media)
        assert leftovers, f"no uncommitted files at the kill\n{jobs_table(campaign)}"

        probe.delay(0)
        wait_campaign_finished(campaign, [worker])
        assert worker.poll() is None, "the worker itself must survive its pool process"
        assert "WorkerLostError" in Path(worker.log_path).read_text()

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert {pk for pk in stored if jobs[pk].attempts == 1} == stored, jobs_table(campaign)
    assert {pk for pk in lost if jobs[pk].attempts == 2} == lost, jobs_table(campaign)
    assert {job.attempts for pk, job in jobs.items() if pk not in lost} == {1}, jobs_table(campaign)
    assert not leftovers & media_files(media)
    print(f"\nkilled pool process {pid} with {len(stored)} stored and {len(lost)} in flight; {len(jobs)} items once")


def test_it_renders_each_item_once_when_the_whole_worker_is_killed_and_another_starts(
    redis_server, media, probe, tmp_path, owner, brand, personas
):
    """kill -9 of the worker's whole process group while its first batch stores
    its first job: the delivery it held stays unacknowledged in Redis, the
    other jobs' messages wait in the queue. A new worker, started once the
    Redis visibility timeout has passed, gets the held delivery back (kombu
    restores it when it starts) and reclaims the dead worker's jobs."""
    visibility = 30  # the replacement's; its hard time limit must stay below it
    redis_server.start()
    probe.delay(3)
    with ExitStack() as stack:
        doomed = start_worker(stack, name="doomed", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=8)  # 16 items
        first = wait_for(
            lambda: mid_store(campaign, media, succeeded=lambda count: count == 0),
            timeout=FINISH_TIMEOUT,
            what="the first job's files written",
            interval=0.05,
        )
        pool = pool_processes(doomed)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        wait_for(lambda: all(gone(pid) for pid in pool), timeout=30, what="the pool processes to die")
        probe.delay(0)

        held = {job.pk for job in campaign_jobs(campaign).filter(status=Status.RUNNING)}
        assert first.pk == min(held) and len(held) > 1, jobs_table(campaign)
        assert not campaign_jobs(campaign).filter(status=Status.SUCCEEDED).exists(), jobs_table(campaign)
        leftovers = uncommitted_files(campaign, media)
        assert leftovers, jobs_table(campaign)
        # The first job's delivery is unacknowledged, and nobody is left to acknowledge it.
        assert redis_server.client.hlen("unacked") == 1
        assert redis_server.client.llen("gpu") == campaign_jobs(campaign).count() - 1
        # Beat's lease sweep finds nothing yet: the leases are valid for minutes.
        assert generation_jobs_expire_leases() == {"requeued": 0, "failed": 0}

        # The replacement comes up once the held delivery is past the visibility timeout.
        delay = first.started_at.timestamp() + visibility + 1 - time.time()
        if delay > 0:
            time.sleep(delay)
        replacement = start_worker(
            stack,
            name="replacement",
            server=redis_server,
            media=media,
            probe=probe,
            tmp_path=tmp_path,
            CELERY_VISIBILITY_TIMEOUT=visibility,
            CELERY_TASK_TIME_LIMIT=visibility - 2,
            CELERY_TASK_SOFT_TIME_LIMIT=visibility - 5,
        )
        wait_campaign_finished(campaign, [doomed, replacement])

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert {jobs[pk].attempts for pk in held} == {2}, jobs_table(campaign)
    assert {job.attempts for pk, job in jobs.items() if pk not in held} == {1}, jobs_table(campaign)
    assert not leftovers & media_files(media)
    print(f"\nkilled the worker holding {len(held)} jobs; the replacement rendered each of {len(jobs)} items once")


def test_it_renders_each_item_once_when_redis_restarts_empty_mid_campaign(
    redis_server, media, probe, tmp_path, owner, brand, personas, monkeypatch
):
    """Redis killed (no persistence) while the worker renders the first batch:
    every queued message is lost. The batch in flight still completes (its
    results go to the database); the sweeper sends the accepted but never
    claimed jobs again, and each item is rendered once."""
    redis_server.start()
    probe.delay(1)
    with ExitStack() as stack:
        worker = start_worker(stack, name="restart", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=8)  # 16 items
        wait_for(
            lambda: mid_store(campaign, media, succeeded=lambda count: True),
            timeout=FINISH_TIMEOUT,
            what="the first batch storing",
            interval=0.05,
        )
        redis_server.kill()
        probe.delay(0)
        redis_server.start()
        # Every message is gone; the worker, reconnecting, may already have declared its
        # queues again (binding keys), so the queues themselves are what is looked at.
        client = redis_server.client
        assert [client.llen(queue) for queue in ("gpu", "default")] == [0, 0]
        assert client.hlen("unacked") == 0

        # The batch in flight finishes; the rest were accepted by the broker and lost with it.
        wait_for(
            lambda: not campaign_jobs(campaign).filter(status=Status.RUNNING).exists(),
            timeout=FINISH_TIMEOUT,
            what="the batch in flight to finish",
        )
        stranded = set(campaign_jobs(campaign).filter(status=Status.QUEUED).values_list("pk", flat=True))
        assert stranded, jobs_table(campaign)
        assert not campaign_jobs(campaign).filter(pk__in=stranded, dispatched_at=None).exists()
        # Accepted a moment ago: the sweeper does not send them again yet.
        assert generation_jobs_dispatch_pending() == 0
        # The sweeper, as beat runs it, once REDISPATCH_AFTER (15 min, not a setting) has passed.
        monkeypatch.setattr(jobs_service, "REDISPATCH_AFTER", timedelta(seconds=3))
        time.sleep(3)
        assert generation_jobs_dispatch_pending() == len(stranded)

        last_sweep = [time.monotonic()]

        def beat():
            if time.monotonic() - last_sweep[0] > 5:
                last_sweep[0] = time.monotonic()
                generation_jobs_dispatch_pending()

        wait_campaign_finished(campaign, [worker], tick=beat)
        assert worker.poll() is None

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert_each_job_stored_once(jobs, probe)
    assert {job.attempts for job in jobs.values()} == {1}, jobs_table(campaign)
    print(f"\nRedis restarted empty; {len(stranded)} stranded items sent again; {len(jobs)} items once")


def test_it_never_renders_an_item_on_two_workers(redis_server, media, probe, tmp_path, owner, brand, personas):
    """Two idle workers get the campaign's first messages at once and claim
    batches from the same queued items, their claims interleaved (each pauses
    after each claim of batch mates): every claim is a compare-and-set, so no item
    is claimed, rendered or stored twice, and a delivery of an item the other
    worker holds waits instead of rendering it."""
    redis_server.start()
    probe.delay(0.3)  # a batch of 8 takes seconds: the other worker takes the next messages meanwhile
    with ExitStack() as stack:
        workers = [
            start_worker(
                stack,
                name=name,
                server=redis_server,
                media=media,
                probe=probe,
                tmp_path=tmp_path,
                **{CLAIM_DELAY_ENV: 0.25},
            )
            for name in ("alpha", "bravo")
        ]
        pools = {worker.pid: pool_processes(worker) for worker in workers}
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=12)  # 24 items
        wait_campaign_finished(campaign, workers)
        assert all(worker.poll() is None for worker in workers)
        assert pools == {worker.pid: pool_processes(worker) for worker in workers}, "a pool process was replaced"

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert len(jobs) == 24
    assert_each_job_stored_once(jobs, probe)
    assert {job.attempts for job in jobs.values()} == {1}, jobs_table(campaign)
    claimants = Counter(claimant_pid(job) for job in jobs.values())
    storers = Counter(pid for _job, _attempt, pid in probe.stores())
    assert claimants == storers
    pool_pids = {pid for pids in pools.values() for pid in pids}
    assert set(claimants) <= pool_pids, (claimants, pools)
    # Both take part: the second worker is idle while the first stores its batch.
    assert len(claimants) == 2, f"only one worker rendered: {claimants}\n{logs(workers)}"
    print(
        f"\nitems per pool process: {dict(claimants)}; claims in order: {[claimant_pid(job) for job in jobs.values()]}"
    )


def test_it_fails_an_item_that_kills_its_worker_every_time_and_renders_its_batch_mates(
    redis_server, media, probe, tmp_path, settings, owner, brand, personas
):
    """Variant 13 (noise seed 13) kills the pool process whenever it is
    rendered; the campaign has one such item per persona. The first attempt
    of each takes its batch down with it; each batch mate is then rendered
    alone (never with the items still queued, which would take those down
    too) and succeeds, while the crashing items are failed after
    GENERATION_MAX_ATTEMPTS with the reason in job.error.

    Batches of 16 (GENERATION_BATCH_SIZE_CPU): the first batch holds persona
    A's 14 items and B's first 2, so while A's items are retried B's 12 items
    are still queued, B's variant 13 among them."""
    settings.GENERATION_MAX_ATTEMPTS = 2  # stored on each job when it is queued
    redis_server.start()
    with ExitStack() as stack:
        worker = start_worker(
            stack,
            name="crash",
            server=redis_server,
            media=media,
            probe=probe,
            tmp_path=tmp_path,
            GENERATION_MAX_ATTEMPTS=2,
            GENERATION_BATCH_SIZE_CPU=16,
        )
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=CRASH_NOISE_SEED + 1)
        wait_campaign_finished(campaign, [worker])
        assert worker.poll() is None, "the worker itself must survive its pool processes"
        log = Path(worker.log_path).read_text()

    jobs = assert_each_item_rendered_once(campaign, media, probe, failed_variants={CRASH_NOISE_SEED})
    assert len(jobs) == 28
    assert_each_job_stored_once({pk: job for pk, job in jobs.items() if job.status == Status.SUCCEEDED}, probe)
    crashing = [
        item.job
        for item in CampaignItem.objects.for_brand(brand).select_related("job").filter(campaign=campaign)
        if item.variant == CRASH_NOISE_SEED
    ]
    assert len(crashing) == 2
    for job in crashing:
        assert (job.noise_seed, job.attempts) == (CRASH_NOISE_SEED, 2)
        assert job.error.startswith("Gave up after 2 attempts: the worker rendering this job was lost each time")
    # Every item was in a batch with a crashing one once, then rendered alone.
    assert {job.attempts for job in jobs.values()} == {2}, jobs_table(campaign)
    # The pool process died four times: two batches, then each crashing item alone.
    assert log.count("exited with 'exitcode 9'") == 4, log[-4000:]
    progress = campaign_progress(brand=brand, campaign=campaign)
    assert (progress.succeeded, progress.failed, progress.state) == (26, 2, "failed")


def test_it_keeps_a_campaign_submitted_while_the_broker_is_down_and_renders_each_item_once_when_it_is_back(
    redis_server, media, probe, tmp_path, owner, brand, personas
):
    """The broker's port is closed at submit: the campaign is queued with each
    job's reason shown; once Redis is up, the sweeper sends the jobs after
    their backoff and a worker renders each item once."""
    started = time.monotonic()
    campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=4)  # 8 items
    assert time.monotonic() - started < 10
    progress = campaign_progress(brand=brand, campaign=campaign)
    assert (progress.state, progress.queued, progress.total) == ("queued", 8, 8)
    for job in campaign_jobs(campaign):
        assert (job.status, job.attempts, job.dispatched_at, job.dispatch_attempts) == (Status.QUEUED, 0, None, 1)
        assert job.dispatch_error.startswith("The task queue is unreachable (")
        assert job.dispatch_error.endswith("; sending again in 5 s.")
        assert job.waiting_reason == job.dispatch_error
    # Still down: the sweeper sends nothing before the backoff (5 s) is over.
    assert generation_jobs_dispatch_pending() == 0

    redis_server.start()
    with ExitStack() as stack:
        worker = start_worker(stack, name="outage", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        wait_for(
            lambda: not campaign_jobs(campaign).filter(next_dispatch_at__gt=timezone.now()).exists(),
            timeout=60,
            what="the backoff to end",
        )
        assert generation_jobs_dispatch_pending() == 8
        assert not campaign_jobs(campaign).filter(dispatched_at=None).exists()
        assert {job.waiting_reason for job in campaign_jobs(campaign).filter(status=Status.QUEUED)} <= {
            "Waiting for a worker."
        }
        assert generation_jobs_dispatch_pending() == 0  # accepted: not sent again
        wait_campaign_finished(campaign, [worker])
        # The worker took the 8 messages there were (one rendered the batch), and no more came.
        wait_queue_drained(redis_server)

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert_each_job_stored_once(jobs, probe)
    assert {job.attempts for job in jobs.values()} == {1}
    log = Path(worker.log_path).read_text()
    received = [line for line in log.splitlines() if "Task generation.render_job[" in line and "] received" in line]
    assert len(received) == 8, log[-4000:]


def test_it_renders_a_campaign_of_two_models_in_batches_of_one_model_each(
    redis_server, media, probe, tmp_path, checkpoint_dir, owner, brand, persona
):
    """A campaign may pin personas of different models; a forward pass renders
    one model, so batch mates are claimed among the delivered job's model
    only, and the other model's items wait for a delivery of their own."""
    other = persona_of_own_model(
        owner=owner, brand=brand, checkpoint_dir=checkpoint_dir, directory=tmp_path, slug="second", seed=44
    )
    assert other.model_id != persona.model_id
    redis_server.start()
    with ExitStack() as stack:
        worker = start_worker(stack, name="models", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=[persona, other], variants=4)  # 8 items
        # Healthy, this takes seconds; batch mates of the wrong model stall until their lease ends (7 min).
        wait_campaign_finished(campaign, [worker], timeout=120)

    jobs = assert_each_item_rendered_once(campaign, media, probe)
    assert_each_job_stored_once(jobs, probe)
    assert {job.attempts for job in jobs.values()} == {1}, jobs_table(campaign)
    assert "jobs_render renders jobs of one model at a time" not in Path(worker.log_path).read_text()


def test_it_leaves_no_files_of_a_dead_worker_behind_when_its_requeued_campaign_is_cancelled(
    redis_server, media, probe, tmp_path, owner, brand, personas
):
    """The whole worker is killed while its first job's files are written but
    not committed; no worker comes back, so beat's lease sweep puts the jobs
    back in the queue (attempts kept). Cancelling the campaign then removes
    the files the dead attempt wrote: nothing refers to them."""
    redis_server.start()
    probe.delay(3)
    with ExitStack() as stack:
        doomed = start_worker(stack, name="doomed", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=personas, variants=4)  # 8 items
        wait_for(
            lambda: mid_store(campaign, media, succeeded=lambda count: count == 0),
            timeout=FINISH_TIMEOUT,
            what="the first job's files written",
            interval=0.05,
        )
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
    leftovers = uncommitted_files(campaign, media)
    assert leftovers, jobs_table(campaign)

    # The leases (hard time limit + 60 s: 7 minutes) run out; beat's sweep requeues the jobs.
    running = campaign_jobs(campaign).filter(status=Status.RUNNING)
    held = running.count()
    running.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert generation_jobs_expire_leases() == {"requeued": held, "failed": 0}
    assert set(campaign_jobs(campaign).values_list("status", flat=True)) == {Status.QUEUED}

    assert campaign_cancel(actor=owner, brand=brand, campaign=campaign) == 8
    assert set(campaign_jobs(campaign).values_list("status", flat=True)) == {Status.CANCELLED}
    assert not Asset.objects.for_brand(brand).exists()
    assert media_files(media) == set(), f"files left of cancelled jobs\n{jobs_table(campaign)}"


def test_it_leaves_no_files_of_a_killed_attempt_behind_when_the_next_attempt_fails(
    redis_server, media, probe, tmp_path, checkpoint_dir, owner, brand
):
    """The pool process is killed while a job's files are written but not
    committed, and the model's weights are gone by the time the job is tried
    again: the re-attempts fail with the reason, and the files the killed
    attempt wrote are removed with them."""
    fragile = persona_of_own_model(
        owner=owner, brand=brand, checkpoint_dir=checkpoint_dir, directory=tmp_path, slug="fragile", seed=45
    )
    redis_server.start()
    probe.delay(3)
    with ExitStack() as stack:
        worker = start_worker(stack, name="fragile", server=redis_server, media=media, probe=probe, tmp_path=tmp_path)
        campaign = campaign_submitted(owner=owner, brand=brand, personas=[fragile], variants=8)  # 8 items, one batch
        caught = wait_for(
            lambda: mid_store(campaign, media, succeeded=lambda count: count >= 1),
            timeout=FINISH_TIMEOUT,
            what="the batch in the middle of storing",
            interval=0.05,
        )
        (tmp_path / "fragile" / "weights.safetensors").unlink()
        os.kill(claimant_pid(caught), signal.SIGKILL)
        wait_for(lambda: gone(claimant_pid(caught)), timeout=30, what="the pool process to die")
        lost = {job.pk for job in campaign_jobs(campaign).filter(status=Status.RUNNING)}
        leftovers = uncommitted_files(campaign, media)
        assert lost and leftovers, jobs_table(campaign)

        probe.delay(0)
        wait_campaign_finished(campaign, [worker])

    items = CampaignItem.objects.for_brand(brand).filter(campaign=campaign).select_related("job")
    failed_variants = {item.variant for item in items if item.job.pk in lost}
    jobs = assert_each_item_rendered_once(campaign, media, probe, failed_variants=failed_variants)
    for pk in lost:
        assert jobs[pk].attempts == 2 and jobs[pk].error.startswith("Model 'fragile' could not be loaded from"), (
            jobs_table(campaign)
        )
    assert not leftovers & media_files(media)
