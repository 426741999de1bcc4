"""Campaign throughput through the whole pipeline: PostgreSQL, Redis, a real Celery worker.

    .venv/bin/python bench/campaign.py                          # 64 images, batch 1 and 8
    .venv/bin/python bench/campaign.py --images 128 --batch-sizes 8,32 --formats 1:1,4:5
    .venv/bin/python bench/campaign.py --device cpu --rounds 3 --threads 1

Needs PostgreSQL (--postgres, default postgres://postgres@127.0.0.1:5432) and Redis
(--redis, default redis://127.0.0.1:6379/9: db 9 is the bench's own and is flushed at
the start and the end). It sets itself up and cleans up after itself: a throwaway
database ps_bench_<pid> (migrated with `manage.py migrate`, dropped at the end), a
temporary MEDIA_ROOT and MODELS_ROOT, the bundled default model registered with
`manage.py load_default_model`, and, in this process, a brand, its owner, one persona of
that model and enough looks (seeded, on a non-identity layer group) for the campaign.

For each batch size B it starts a real `celery -A config.celery worker` (prefork,
concurrency 1, queues gpu,default, as tests/integration/conftest.py does) with
GENERATION_BATCH_SIZE_CPU = GENERATION_BATCH_SIZE_CUDA = B, runs a small warm-up campaign
(model load, first forward pass), then submits the measured campaign with
campaigns.services.campaign_submit: one persona x looks x formats x variants, sized to
--images items. It prints:

1. end-to-end images/s: images / (last asset row created - start of campaign_submit), i.e.
   through submit, broker, worker, PostgreSQL and storage; next to it, in this process on
   the same items in the same batches of B (pk order, as the worker claims them), with no
   broker and no job, asset or audit rows:
     - "engine": generation.rendering.latents_render_batch only (the forward passes);
     - "engine+image": latents_render_batch plus each image's work as jobs_render does
       it: identity_score, pixels_to_png and content.services.asset_files_save (the
       renditions, C2PA signing, which reads the brand's key row, and the storage
       writes, into a scratch folder, for a stand-in job; removed afterwards, untimed).
   The target is pipeline >= 80% of the engine; the ratio against both is printed, with
   whether the target is met, and the same two ratios from the worker's own timings in
   that run (its forward passes, and forward passes + per-image work, over the wall
   time), which no noise between two processes can skew.
2. latency from the start of submit to the first asset row created, and to the last.
3. batching gain: pipeline images/s at the largest batch size over the smallest.

Then where the pipeline's time went, from the jobs' GenerationJob.timings (load_ms,
render_ms, batch_render_ms, encode_ms, save_ms), their started_at/finished_at (claims of
batch mates, each image's database commit, the gaps between batches) and the worker
log's task run times (with batching, most deliveries find their job already rendered),
and the in-process per-image steps (asset_renditions, c2pa_sign and its key lookup,
storage). Formats of one recipe share a forward pass, so with several --formats the
engine renders fewer images than the campaign stores.

--rounds campaigns per batch size, each followed by the engine runs on its items (while
the worker idles); the best of each counts. Device: GENERATION_DEVICE
(--device, default auto: CUDA when available), the same in the worker and in this
process; torch's own thread count unless --threads sets OMP_NUM_THREADS for both.

On a GPU machine it needs PostgreSQL and Redis there too. On a shared or small machine the
numbers are noisy: with torch using every core, another
busy process can slow a forward pass several-fold; --threads 1 is steadier there.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_VARIANTS = 16  # campaigns.services.MAX_VARIANTS, read before Django is set up
TASK_LINE = re.compile(r"Task generation\.render_job\[[^\]]+\] succeeded in ([0-9.]+)s")
FINISHED = ("succeeded", "failed", "cancelled")


# --- environment: database, broker, folders ------------------------------------------------


def database_create(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def database_drop(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=3).flushdb()


def manage(*arguments: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=os.environ, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")


class Worker:
    """A real `celery worker` process on the bench's database and broker."""

    def __init__(self, *, batch_size: int, log_path: Path):
        self.log_path = log_path
        env = {
            **os.environ,
            "GENERATION_BATCH_SIZE_CPU": str(batch_size),
            "GENERATION_BATCH_SIZE_CUDA": str(batch_size),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "config.celery", "worker",
            "--queues", "gpu,default", "--concurrency", "1", "--pool", "prefork",
            "--hostname", f"bench{batch_size}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
            "--loglevel", "INFO",
        ]  # fmt: skip
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while "ready." not in self.log() and self.process.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"celery worker not ready after 120 s; log: {log_path}")
            time.sleep(0.1)
        if self.process.poll() is not None:
            raise SystemExit(f"celery worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def task_times(self, since: int = 0) -> list[float]:
        """Run times (s) of the render tasks the worker logged after character `since`."""
        return [float(seconds) for seconds in TASK_LINE.findall(self.log()[since:])]

    def alive_require(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"celery worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# --- fixtures and campaigns (Django set up) ---------------------------------------------------


@dataclass
class Fixtures:
    owner: object
    brand: object
    model: object
    version: object
    looks: list


def fixtures_create(*, looks: int) -> Fixtures:
    from django.contrib.auth import get_user_model

    from avatars.services import library_item_create, persona_create_from_seed
    from brands.services import brand_create
    from generation.management.commands.load_default_model import DEFAULT_SLUG
    from generation.models import GeneratorModel

    model = GeneratorModel.objects.get(slug=DEFAULT_SLUG)
    owner = get_user_model().objects.create_user(username="bench", password=None)
    brand = brand_create(actor=owner, name="Bench Brand", slug="bench")
    class_index = 0 if model.c_dim else None
    persona = persona_create_from_seed(
        actor=owner, brand=brand, model=model, seed=42, name="Bench", handle="bench", class_index=class_index
    )
    group = next(g["name"] for g in reversed(model.layer_groups) if g["name"] != model.identity_group)
    items = [
        library_item_create(
            actor=owner,
            brand=brand,
            model=model,
            kind="look",
            name=f"bench look {i}",
            layer_group=group,
            seed=1000 + i,
            class_index=(i % model.c_dim) if model.c_dim else None,
        )  # fmt: skip
        for i in range(looks)
    ]
    return Fixtures(owner=owner, brand=brand, model=model, version=persona.current_version, looks=items)


def matrix_for(images: int, formats: list[str]) -> tuple[int, int]:
    """(looks, variants) with looks x len(formats) x variants == images, fewest looks."""
    per_look = images // len(formats)
    if images % len(formats) == 0:
        for looks in range(max(1, math.ceil(per_look / MAX_VARIANTS)), per_look + 1):
            if per_look % looks == 0 and per_look // looks <= MAX_VARIANTS:
                return looks, per_look // looks
    raise SystemExit(f"--images {images} is not a multiple of the {len(formats)} format(s)")


@dataclass
class CampaignRun:
    images: int
    batch_key: str
    submit_s: float
    first_s: float  # start of submit -> first asset row created
    last_s: float  # start of submit -> last asset row created
    first_claim_s: float  # start of submit -> first job claimed
    failed: int
    jobs: list = field(default_factory=list)  # GenerationJob rows, pk order

    @property
    def images_per_s(self) -> float:
        return self.images / self.last_s


def campaign_run(*, fx: Fixtures, worker: Worker, name: str, looks, formats, variants, timeout: float) -> CampaignRun:
    from django.utils import timezone

    from campaigns.services import campaign_submit
    from content.models import Asset
    from generation.models import GenerationJob

    started_at, started = timezone.now(), time.perf_counter()
    campaign = campaign_submit(
        actor=fx.owner, brand=fx.brand, name=name, versions=[fx.version], formats=formats, looks=looks,
        variants=variants,
    )  # fmt: skip
    submit_s = time.perf_counter() - started
    jobs = GenerationJob.objects.for_brand(fx.brand).filter(batch_key=campaign.batch_key)
    total = jobs.count()
    deadline = time.monotonic() + timeout
    while jobs.filter(status__in=FINISHED).count() < total:
        worker.alive_require()
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {name} not finished after {timeout} s; worker log: {worker.log_path}")
        time.sleep(0.05)
    rows = list(jobs.select_related("reference_version", "version", "model", "persona__brand").order_by("pk"))
    created = sorted(
        Asset.objects.for_brand(fx.brand).filter(job__batch_key=campaign.batch_key).values_list("created_at", flat=True)
    )
    if not created:
        errors = {job.error for job in rows}
        raise SystemExit(f"campaign {name}: no image was made; errors: {errors}; worker log: {worker.log_path}")
    claims = [job.started_at for job in rows if job.started_at]
    return CampaignRun(
        images=len(created),
        batch_key=campaign.batch_key,
        submit_s=submit_s,
        first_s=(created[0] - started_at).total_seconds(),
        last_s=(created[-1] - started_at).total_seconds(),
        first_claim_s=(min(claims) - started_at).total_seconds(),
        failed=sum(job.status != "succeeded" for job in rows),
        jobs=rows,
    )


def tasks_wait(worker: Worker, *, since: int, count: int, timeout: float) -> list[float]:
    """Wait until the worker has run `count` render tasks after log offset `since`
    (deliveries left over once every job is done: a batch rendered their jobs)."""
    deadline = time.monotonic() + timeout
    while len(times := worker.task_times(since)) < count:
        worker.alive_require()
        if time.monotonic() > deadline:
            raise SystemExit(f"worker ran {len(times)} of {count} render tasks in {timeout} s: {worker.log_path}")
        time.sleep(0.05)
    return times


# --- the engine alone, in this process ------------------------------------------------------


# Stand-in jobs for the in-process runs write their files under job ids no real job has.
STAND_IN_JOB_OFFSET = 10**9
# Inside asset_files_save, these functions are timed too, where they exist: (module, name).
# The c2pa ones run inside c2pa_sign, and are shown as part of it.
FILE_STEPS = (("content.services", "asset_renditions"), ("content.services", "c2pa_sign"))
SIGN_STEPS = (("content.c2pa", "brand_signer_get"),)
_step_seconds: dict[str, float] = {}


def steps_instrument() -> None:
    """Time FILE_STEPS and SIGN_STEPS in this process (never in the worker) by wrapping them."""
    import functools
    import importlib

    def timed(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                _step_seconds[name] = _step_seconds.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    for module_name, name in FILE_STEPS + SIGN_STEPS:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            setattr(module, name, timed(name, getattr(module, name)))


@dataclass
class EngineRound:
    render_s: float
    forwards: int  # images the forward passes rendered (a distinct latent and noise seed once per batch)
    steps: dict  # per-image step -> seconds, summed over the items (empty: render only)
    nested: dict = field(default_factory=dict)  # parts of the steps above, not added to them

    @property
    def image_s(self) -> float:
        return sum(self.steps.values())


def engine_round(*, jobs: list, batch_size: int, per_image: bool) -> EngineRound:
    """The same items in the worker's batches (pk order, B at a time, a distinct
    (latent, noise seed) rendered once per batch), as jobs_render does, minus the
    broker, the job/asset/audit rows and their commits. With `per_image`, each item
    then goes through identity_score, pixels_to_png and asset_files_save (renditions,
    signing, storage) for a stand-in job, whose files are removed untimed."""
    import hashlib
    from types import SimpleNamespace

    from content.services import asset_files_delete, asset_files_save
    from generation.rendering import identity_score, latents_render_batch, pixels_to_png

    render_s, score_png_s, files_s, forwards = 0.0, 0.0, 0.0, 0
    before = dict(_step_seconds)
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first : first + batch_size]
        model = chunk[0].model
        keys, latents, seeds = {}, [], []
        for job in chunk:
            latent = job.render_latent()
            key = (hashlib.sha256(latent.tobytes()).hexdigest(), job.noise_seed)
            if key not in keys:
                keys[key] = len(latents)
                latents.append(latent)
                seeds.append(job.noise_seed)
            job.bench_index = keys[key]
        started = time.perf_counter()
        batch = latents_render_batch(model=model, latents=latents, noise_seeds=seeds, batch_size=batch_size)
        render_s += time.perf_counter() - started
        forwards += len(latents)
        if not per_image:
            continue
        for job in chunk:
            pixels, latent = batch.pixels[job.bench_index], latents[job.bench_index]
            started = time.perf_counter()
            identity_score(
                model=model, pixels=pixels, latent=latent, reference_latent=job.reference_version.latent_array()
            )
            png = pixels_to_png(pixels)
            scored = time.perf_counter()
            stand_in = SimpleNamespace(pk=STAND_IN_JOB_OFFSET + job.pk, persona=job.persona)
            files = asset_files_save(job=stand_in, attempt=1, png_bytes=png, output_format=job.output_format)
            score_png_s += scored - started
            files_s += time.perf_counter() - scored
            asset_files_delete(files=files)
    if not per_image:
        return EngineRound(render_s=render_s, forwards=forwards, steps={})
    spent = {name: _step_seconds.get(name, 0.0) - before.get(name, 0.0) for _, name in FILE_STEPS + SIGN_STEPS}
    inner = {name: spent[name] for _, name in FILE_STEPS}
    steps = {"identity_score + pixels_to_png": score_png_s, **inner}
    steps["rest of asset_files_save (storage writes, ...)"] = files_s - sum(inner.values())
    nested = {f"{name} (in c2pa_sign)": spent[name] for _, name in SIGN_STEPS}
    return EngineRound(render_s=render_s, forwards=forwards, steps=steps, nested=nested)


# --- report -----------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """Everything measured at one batch size."""

    batch_size: int
    warm: CampaignRun  # the warm-up campaign, on a just-started worker
    runs: list = field(default_factory=list)  # (CampaignRun, worker task run times), one per round
    render_only: list = field(default_factory=list)  # EngineRound per round
    with_images: list = field(default_factory=list)  # EngineRound per round

    @property
    def best(self) -> tuple[CampaignRun, list[float]]:
        return max(self.runs, key=lambda run: run[0].images_per_s)

    @property
    def pipeline(self) -> float:
        return self.best[0].images_per_s

    @property
    def engine(self) -> float:
        return self.best[0].images / min(r.render_s for r in self.render_only)

    @property
    def engine_best_with_images(self) -> EngineRound:
        return min(self.with_images, key=lambda r: r.render_s + r.image_s)

    @property
    def engine_with_images(self) -> float:
        best = self.engine_best_with_images
        return self.best[0].images / (best.render_s + best.image_s)


@dataclass
class Phases:
    """Where the wall time from submit to the last image went, from the worker's own numbers."""

    first_claim: float  # submit start -> first job claimed
    load: float
    render: float  # forward passes
    encode: float  # per image: waiting for its files (made in threads) + storing them (save_ms)
    db_tail: float | None  # estimated: job update, asset + audit rows, commit, per image (median)
    claiming: float  # within each batch, first claim -> last claim, summed
    between: float  # a batch's last finished_at -> the next batch's first claim, summed
    batches: int
    rest: float  # everything else up to the last asset row
    rendering_tasks: list
    idle_tasks: list


def phases(run: CampaignRun, task_times: list[float], batch_size: int) -> Phases:
    done = [job for job in run.jobs if job.status == "succeeded"]
    # A forward-pass batch is a run of jobs (claimed oldest first, so consecutive in pk
    # order) that share batch_render_ms and load_ms, at most batch_size long.
    batches, keys = [], []
    for job in done:
        key = (job.timings["batch_render_ms"], job.timings["load_ms"])
        if batches and len(batches[-1]) < batch_size and keys[-1] == key:
            batches[-1].append(job)
        else:
            batches.append([job])
            keys.append(key)
    # Within a batch, job i+1's finished_at - job i's = job i's database tail (its status
    # update, asset and audit rows, commit) + job i+1's save_ms.
    tails = [
        (b.finished_at - a.finished_at).total_seconds() - b.timings["save_ms"] / 1000
        for batch in batches
        for a, b in zip(batch, batch[1:], strict=False)
    ]
    load = sum(batch[0].timings["load_ms"] for batch in batches) / 1000
    render = sum(job.timings["render_ms"] for job in done) / 1000
    encode = sum(job.timings["save_ms"] for job in done) / 1000
    longest = sorted(task_times, reverse=True)
    claiming = sum((max(j.started_at for j in b) - min(j.started_at for j in b)).total_seconds() for b in batches)
    between = sum(
        (min(j.started_at for j in b) - max(j.finished_at for j in a)).total_seconds()
        for a, b in zip(batches, batches[1:], strict=False)
    )
    return Phases(
        claiming=claiming,
        between=between,
        first_claim=run.first_claim_s,
        load=load,
        render=render,
        encode=encode,
        db_tail=statistics.median(tails) if tails else None,
        batches=len(batches),
        rest=run.last_s - run.first_claim_s - load - render - encode,
        rendering_tasks=longest[: len(batches)],
        idle_tasks=longest[len(batches) :],
    )


def phases_print(run: CampaignRun, p: Phases) -> None:
    rows = [
        (
            f"submit start -> first job claimed by the worker (campaign_submit itself: {run.submit_s:.2f} s; "
            "it sends the tasks on commit)",
            p.first_claim,
        ),
        (f"model load (sum of load_ms over {p.batches} forward-pass batches)", p.load),
        (f"forward passes (sum of batch_render_ms: {run.images / max(p.render, 1e-9):.1f} images/s)", p.render),
        (
            "per image: waiting for its files (PNG, renditions, signing: made in GENERATION_ENCODE_THREADS threads) "
            "and storing them (save_ms)",
            p.encode,
        ),
        ("the rest: claims, job/asset/audit rows, commits, broker and task overhead", p.rest),
    ]
    if p.db_tail is not None:
        rows.append(
            (
                f"  of which per image: job update, asset + audit rows, commit (median {p.db_tail * 1000:.1f} ms, "
                "from finished_at gaps within batches) x images",
                p.db_tail * run.images,
            )
        )
    rows += [
        ("  of which claiming batch mates (first -> last started_at in each batch)", p.claiming),
        (
            f"  of which between the {p.batches} batches/tasks: a batch's last commit, task end, next delivery, "
            "claim (last finished_at -> next first started_at)",
            p.between,
        ),
    ]
    rows += [
        (
            f"[worker log] the {len(p.rendering_tasks)} longest tasks (those that rendered), run time",
            sum(p.rendering_tasks),
        ),
        (
            f"[worker log] the other {len(p.idle_tasks)} deliveries (their job already rendered by a batch), run time",
            sum(p.idle_tasks),
        ),
    ]
    for label, seconds in rows:
        print(f"    {seconds:7.2f} s  {label}")


def verdict(ratio: float) -> str:
    return f"{ratio:4.0%} (target >= 80%: {'met' if ratio >= 0.8 else 'NOT met'})"


def report(results: list[BatchResult], rounds: int) -> None:
    print(
        "\nengine       = latents_render_batch only (the forward passes), in this process, on the same items\n"
        "               in the same batches as the worker\n"
        "engine+image = that plus each image's work as jobs_render does it: identity_score, pixels_to_png and\n"
        "               asset_files_save (renditions, C2PA signing, storage writes into a scratch folder); no\n"
        "               broker, no job/asset/audit rows or commits (signing does read the brand's key row)\n"
        f"best of {rounds} round(s) each, pipeline and engine alternating; first/last: seconds from the start\n"
        "of campaign_submit to the first/last asset row; cold: the warm-up campaign on a just-started worker"
    )
    print(
        f"\n{'batch':>5} {'images':>6} {'pipeline/s':>10} {'engine/s':>9} {'eng+img/s':>9} {'pipe/eng':>8} "
        f"{'pipe/e+i':>8} {'first s':>7} {'last s':>7} {'cold first s':>12}"
    )
    for result in results:
        run = result.best[0]
        print(
            f"{result.batch_size:5d} {run.images:6d} {result.pipeline:10.2f} {result.engine:9.2f} "
            f"{result.engine_with_images:9.2f} {result.pipeline / result.engine:8.0%} "
            f"{result.pipeline / result.engine_with_images:8.0%} {run.first_s:7.2f} {run.last_s:7.2f} "
            f"{result.warm.first_s:12.2f}"
        )
    for result in results:
        run, task_times = result.best
        rates = ", ".join(f"{r.images_per_s:.2f}" for r, _ in result.runs)
        print(
            f"\nbatch {result.batch_size}: {run.images} images in {run.last_s:.2f} s = {run.images_per_s:.2f} images/s"
        )
        print(f"  pipeline images/s per round: {rates}")
        print(
            f"  {result.render_only[0].forwards} images rendered by forward passes for {run.images} items "
            "(a recipe's formats share one only when they fall in the same batch)"
        )
        if run.failed:
            print(f"  {run.failed} job(s) did not succeed")
        print(f"  pipeline / engine       = {verdict(result.pipeline / result.engine)}")
        print(f"  pipeline / engine+image = {verdict(result.pipeline / result.engine_with_images)}")
        p = phases(run, task_times, result.batch_size)
        print(
            "  the same ratios from the worker's own timings in that run (no second process, so no noise between\n"
            f"  them): pipeline / its forward passes = {verdict(p.render / run.last_s)};\n"
            f"  pipeline / its forward passes + per-image work = {verdict((p.render + p.encode) / run.last_s)}"
        )
        print(
            f"  latency from submit: first image {run.first_s:.2f} s, last image {run.last_s:.2f} s "
            f"(cold worker: first image {result.warm.first_s:.2f} s)"
        )
        best = result.engine_best_with_images
        print(
            f"  engine+image in this process: forward passes {best.render_s:.2f} s, per-image work "
            f"{best.image_s:.2f} s; ms per image:"
        )
        print(f"    {best.render_s * 1000 / run.images:7.1f} ms  forward pass (latents_render_batch, per image)")
        for step, seconds in {**best.steps, **best.nested}.items():
            print(f"    {seconds * 1000 / run.images:7.1f} ms  {step}")
        print(f"  where the pipeline's {run.last_s:.2f} s went:")
        phases_print(run, p)
    if len(results) > 1:
        small = min(results, key=lambda r: r.batch_size)
        large = max(results, key=lambda r: r.batch_size)
        print(
            f"\nbatching gain, pipeline: batch {large.batch_size} / batch {small.batch_size} = "
            f"{large.pipeline / small.pipeline:.2f}x (engine alone: {large.engine / small.engine:.2f}x, "
            f"engine+image: {large.engine_with_images / small.engine_with_images:.2f}x)"
        )


def batch_size_measure(*, fx: Fixtures, batch_size: int, looks, formats, variants, args, scratch: Path):
    worker = Worker(batch_size=batch_size, log_path=scratch / f"worker-{batch_size}.log")
    try:
        warm_images = min(batch_size, MAX_VARIANTS)
        mark = len(worker.log())
        warm = campaign_run(
            fx=fx, worker=worker, name=f"warm-up B{batch_size}", looks=(), formats=formats[:1],
            variants=warm_images, timeout=args.timeout,
        )  # fmt: skip
        tasks_wait(worker, since=mark, count=warm_images, timeout=120)
        engine_round(jobs=warm.jobs, batch_size=batch_size, per_image=True)  # this process's warm-up
        result = BatchResult(batch_size=batch_size, warm=warm)
        for round_number in range(1, args.rounds + 1):
            mark = len(worker.log())
            run = campaign_run(
                fx=fx, worker=worker, name=f"bench B{batch_size} round {round_number}", looks=looks,
                formats=formats, variants=variants, timeout=args.timeout,
            )  # fmt: skip
            result.runs.append((run, tasks_wait(worker, since=mark, count=len(run.jobs), timeout=300)))
            # The worker is idle now (no message left): the engine runs alone.
            result.render_only.append(engine_round(jobs=run.jobs, batch_size=batch_size, per_image=False))
            result.with_images.append(engine_round(jobs=run.jobs, batch_size=batch_size, per_image=True))
        return result
    finally:
        worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--formats", default="1:1", help="comma-separated content.formats keys, e.g. 1:1,4:5,9:16")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="GENERATION_DEVICE")
    parser.add_argument("--rounds", type=int, default=2, help="campaigns (and engine runs) per batch size")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the worker and this process")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per campaign")
    parser.add_argument("--keep", action="store_true", help="keep the database and temporary folder")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    looks, variants = matrix_for(args.images, formats)

    database = f"ps_bench_{os.getpid()}"
    scratch = Path(tempfile.mkdtemp(prefix=f"{database}-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ENV="development",
        DEBUG="false",  # as in production: no query log growing in the worker
        DATABASE_URL=f"{args.postgres}/{database}",
        CELERY_BROKER_URL=args.redis,
        CELERY_RESULT_BACKEND="",
        REDIS_URL="",
        MEDIA_ROOT=str(scratch / "media"),
        AWS_STORAGE_BUCKET_NAME="",  # local files in MEDIA_ROOT, whatever the caller's environment says
        MODELS_ROOT=str(scratch / "models"),
        GENERATION_DEVICE=args.device,
    )
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    redis_flush(args.redis)
    database_create(args.postgres, database)
    try:
        started = time.perf_counter()
        manage("migrate", "--noinput")
        manage("load_default_model")
        redis_flush(args.redis)  # registration queued a directions task: not part of this bench

        import django

        django.setup()
        import torch

        from generation.rendering import device_get

        steps_instrument()
        fx = fixtures_create(looks=looks if looks > 1 else 0)
        print(
            f"campaign bench: {args.images} images = 1 persona x {looks} look(s) x formats {formats} x "
            f"{variants} variants; model {fx.model.slug}; device {device_get()} "
            f"(torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs); "
            f"database {database}, broker {args.redis}; set up in {time.perf_counter() - started:.0f} s"
        )
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        results = [
            batch_size_measure(
                fx=fx,
                batch_size=batch_size,
                looks=fx.looks,
                formats=formats,
                variants=variants,
                args=args,
                scratch=scratch,
            )  # fmt: skip
            for batch_size in batch_sizes
        ]
        report(results, args.rounds)
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        redis_flush(args.redis)
        if args.keep:
            print(f"kept database {database} and {scratch}")
        else:
            database_drop(args.postgres, database)
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
