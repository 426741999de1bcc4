"""The README's API example, run as written (only its constants replaced) against a
live server with a real Celery worker: it creates a persona, runs a small campaign,
waits for it, has another member approve an asset and downloads the approved file."""

import dataclasses
import re
from pathlib import Path

import pytest
from django.test import override_settings
from PIL import Image

from brands.models import Role
from brands.services import api_token_create, membership_add
from content.formats import disclosure_read
from generation.services.registry import generator_model_register
from generation.stylegan import random_generator, save_generator
from tests.conftest import PLACEHOLDER_CONFIG, ROOT, user_make
from tests.integration.conftest import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

README = ROOT / "README.md"


def readme_example():
    text = README.read_text()
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert block, "README.md lost its <!-- api-example --> block"
    return block.group(1)


@pytest.fixture(scope="module")
def worker(services, django_db_setup, tmp_path_factory):
    media = tmp_path_factory.mktemp("api-example-media")
    with (
        override_settings(MEDIA_ROOT=media),
        celery_worker(media=media, log_path=media.parent / "api-example-worker.log", hostname="api") as process,
    ):
        yield process


@pytest.fixture
def conditional_model(tmp_path):
    """A small conditional model, like the bundled one (the example picks a class)."""
    directory = tmp_path / "conditional"
    save_generator(random_generator(dataclasses.replace(PLACEHOLDER_CONFIG, c_dim=2), seed=1), str(directory))
    return generator_model_register(
        actor=None,
        name="Conditional placeholder",
        slug="conditional-placeholder",
        directory=str(directory),
        licence_note="Random weights placeholder for tests",
        class_names=["jacket", "shirt"],
    )


def test_the_readme_example_runs_a_campaign_to_an_approved_download(
    live_server, worker, owner, brand, conditional_model, tmp_path, monkeypatch
):
    reviewer = user_make("rita")
    membership_add(actor=owner, brand=brand, user=reviewer, role=Role.OWNER)
    maker_scopes = ["models:read", "personas:write", "campaigns:write", "campaigns:read", "assets:read", "assets:write"]
    _, maker_token = api_token_create(actor=owner, name="maker", scopes=maker_scopes, brands=[brand], brand=brand)
    _, reviewer_token = api_token_create(
        actor=reviewer, name="reviewer", scopes=["approvals:read", "approvals:decide"], brands=[brand], brand=brand
    )
    code = readme_example()
    for name, value in {
        "BASE": f"{live_server.url}/api/v1",
        "BRAND": brand.slug,
        "MAKER": maker_token,
        "REVIEWER": reviewer_token,
    }.items():
        code, count = re.subn(rf'^{name} = ".*?"(.*)$', f'{name} = "{value}"', code, flags=re.MULTILINE)
        assert count == 1, name
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(compile(code, str(README), "exec"), {"print": lambda *args: printed.append(" ".join(map(str, args)))})

    assert printed[0] == "campaign completed 2 images"
    assert printed[1] == "review approved"
    [saved] = list(Path(tmp_path).glob("mia-*.png"))
    assert printed[2].startswith(f"saved {saved.name}")
    disclosure = disclosure_read(saved.read_bytes())
    assert disclosure["ai_generated"] and not disclosure["draft"]
    with Image.open(saved) as image:
        assert image.size == (1080, 1080)
