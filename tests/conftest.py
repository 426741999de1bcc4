"""Shared fixtures: a brand with its owner, a member (creator), a viewer and an
outsider (owner of another brand); a small generator model with seeded random
weights (deterministic, renders in milliseconds), written once per session."""

import pytest
from django.contrib.auth import get_user_model

from avatars.services import persona_create_from_seed
from brands.models import Role
from brands.services import brand_create, membership_add
from generation.services.registry import generator_model_register
from generation.stylegan import GeneratorConfig, random_generator, save_generator

PASSWORD = "correct-horse-battery-staple"


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


@pytest.fixture
def memory_broker():
    """Celery's publisher pointed at kombu's in-memory transport. Yields
    `sent(queue)`: the tasks published to that queue since, as (name, args)."""
    from config.celery import app as celery_app

    saved = celery_app.conf.broker_url, celery_app.conf.broker_transport_options
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = "memory://", {}
    celery_app._pool = None

    def sent(queue):
        tasks = []
        with celery_app.connection_for_read() as connection:
            simple = connection.SimpleQueue(queue)
            while simple.qsize():
                message = simple.get(timeout=1)
                tasks.append((message.headers["task"], message.payload[0]))
                message.ack()
            simple.close()
        return tasks

    yield sent
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
    celery_app._pool = None
