"""Shared fixtures: a brand with its owner, a member (creator), a viewer and an
outsider (owner of another brand); a small generator model with seeded random
weights (deterministic, renders in milliseconds), written once per session."""

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from queue import Empty

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from avatars.services import persona_create_from_seed
from brands.models import Role
from brands.services import brand_create, membership_add
from campaigns.models import CampaignItem
from campaigns.services import campaign_submit
from config.celery import app as celery_app
from content.models import Asset
from generation.services.jobs import generation_job_run
from generation.services.registry import generator_model_register
from generation.stylegan import GeneratorConfig, random_generator, save_generator

PASSWORD = "correct-horse-battery-staple"
ROOT = Path(__file__).resolve().parent.parent


def user_make(username):
    return get_user_model().objects.create_user(username=username, password=PASSWORD)


PLACEHOLDER_CONFIG = GeneratorConfig(
    z_dim=512,
    w_dim=512,
    c_dim=0,
    img_resolution=64,
    img_channels=3,
    mapping_layers=8,
    channel_base=4096,
    channel_max=256,
)


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models") / "placeholder"
    save_generator(random_generator(PLACEHOLDER_CONFIG, seed=0), str(directory))
    return directory


@pytest.fixture
def generator_model(db, checkpoint_dir):
    return generator_model_register(
        actor=None,
        name="Test placeholder",
        slug="test-placeholder",
        directory=str(checkpoint_dir),
        licence_note="Random weights placeholder for tests",
    )


BUNDLED_MODEL = ROOT / "generation" / "default_model"


@pytest.fixture
def bundled_model(db):
    """The bundled default (conditional: outfit × gesture classes; ships an identity embedding)."""
    from generation.management.commands.load_default_model import DEFAULT_SLUG

    training = json.loads((BUNDLED_MODEL / "training.json").read_text())
    return generator_model_register(
        actor=None, name="Notionists 64", slug=DEFAULT_SLUG, directory=str(BUNDLED_MODEL),
        licence_note="Ours; CC0 art", class_names=training["class_names"],
    )  # fmt: skip


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def owner(db):
    return user_make("owner")


@pytest.fixture
def brand(owner):
    return brand_create(actor=owner, name="Acme", slug="acme")


@pytest.fixture
def member(owner, brand):
    user = user_make("member")
    membership_add(actor=owner, brand=brand, user=user, role=Role.CREATOR)
    return user


@pytest.fixture
def viewer(owner, brand):
    user = user_make("viewer")
    membership_add(actor=owner, brand=brand, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def outsider(db):
    return user_make("outsider")


@pytest.fixture
def other_brand(outsider):
    return brand_create(actor=outsider, name="Other Co", slug="other")


@pytest.fixture
def persona(owner, brand, generator_model):
    return persona_create_from_seed(
        actor=owner, brand=brand, model=generator_model, seed=42, name="Ava", handle="ava", truncation_psi=0.7
    )


@pytest.fixture
def other_persona(outsider, other_brand, generator_model):
    return persona_create_from_seed(
        actor=outsider, brand=other_brand, model=generator_model, seed=7, name="Otto", handle="otto", truncation_psi=0.7
    )


@contextmanager
def celery_broker(url):
    """Point the (process-wide) Celery app at `url` for publishing and reading.

    Celery reads CELERY_BROKER_URL from the environment before its settings,
    so the read and write URLs (which win over both) are set; the app's
    connection and producer pools are dropped so that the next send connects
    to `url`. kombu keeps pools per URL, so the old ones are left open for
    when the app points back at them."""
    conf = celery_app.conf
    saved = {key: conf.get(key) for key in ("broker_read_url", "broker_write_url")}
    conf.update(broker_read_url=url, broker_write_url=url)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        conf.update(saved)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


class MemoryBroker:
    """What was published to kombu's in-memory transport, read back (and consumed)."""

    QUEUES = ("gpu", "default")

    def __init__(self):
        self.connection = celery_app.connection_for_read()
        for queue in self.QUEUES:
            self.connection.default_channel.queue_declare(queue)
        self.purge()

    def purge(self):
        for queue in self.QUEUES:
            self.connection.default_channel.queue_purge(queue)

    def sent(self, queue):
        """The tasks waiting in `queue`, in order, as (task name, args)."""
        channel, tasks = self.connection.default_channel, []
        while True:
            try:
                message = channel.basic_get(queue, no_ack=True)
            except Empty:
                message = None
            if message is None:
                return tasks
            args, _kwargs, _embed = message.decode()
            tasks.append((message.headers["task"], args))

    def sent_job_ids(self):
        """The job ids of the render tasks sent to queue "gpu", in order."""
        tasks = self.sent("gpu")
        assert {name for name, _ in tasks} <= {"generation.render_job"}, tasks
        return [args[0] for _, args in tasks]


@pytest.fixture
def memory_broker(settings):
    settings.CELERY_BROKER_URL = "memory://"
    with celery_broker("memory://"):
        broker = MemoryBroker()
        try:
            yield broker
        finally:
            broker.purge()
            broker.connection.release()


# --- browser tests (Playwright driving Debian's Chromium) ---------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(tmp_path):
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the
    # test itself happen before and after, never concurrently.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        yield page
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def log_in(page, live_server, username):
    """Sign in through the login page of a live server in a Playwright page."""
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def screenshot(page, name):
    """Save a screenshot as a test artifact, under TEST_ARTIFACTS_DIR (var/test-artifacts)."""
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "var" / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


# --- approvals: reviewers and a rendered campaign by a creator ---------------------------


def member_make(owner, brand, username, role):
    user = user_make(username)
    user.email = f"{username}@example.com"
    user.save(update_fields=["email"])
    membership_add(actor=owner, brand=brand, user=user, role=role)
    return user


@pytest.fixture
def reviewer(owner, brand):
    return member_make(owner, brand, "ana", Role.REVIEWER)


@pytest.fixture
def second_reviewer(owner, brand):
    return member_make(owner, brand, "ben", Role.REVIEWER)


@pytest.fixture
def creator(owner, brand):
    return member_make(owner, brand, "cleo", Role.CREATOR)


def campaign_assets(*, actor, brand, persona, variants=3):
    """A campaign `actor` submits, rendered in-process: its assets, in item order."""
    campaign = campaign_submit(
        actor=actor, brand=brand, name="Spring", versions=[persona.current_version], formats=["1:1"], variants=variants
    )
    items = list(CampaignItem.objects.unscoped().filter(campaign=campaign).order_by("pk"))
    for item in items:
        generation_job_run(job_id=item.job_id)
    return [Asset.objects.unscoped().get(job_id=item.job_id) for item in items]


@pytest.fixture
def assets(creator, brand, persona, media_root):
    return campaign_assets(actor=creator, brand=brand, persona=persona)
