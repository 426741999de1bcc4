import json
import shutil

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from avatars.models import Persona
from brands.models import Brand, Role
from brands.selectors import brand_role
from generation.models import GenerationJob, GeneratorModel


@pytest.fixture
def models_root(settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    return settings.MODELS_ROOT


def test_it_loads_the_bundled_default_model_once(db, models_root, capsys):
    call_command("load_default_model")
    call_command("load_default_model")
    model = GeneratorModel.objects.get()
    assert model.slug == "notionists-64"
    assert "CC0" in model.licence_note and "usable commercially" in model.licence_note
    assert (model.num_ws, model.img_resolution, model.c_dim) == (10, 64, 60)
    assert model.class_names[0] == "dark_jacket/hand" and "tie/waveLongArm" in model.class_names
    assert model.path == models_root / "notionists-64"
    training = json.loads((model.path / "training.json").read_text())
    assert model.sha256 == training["weights_sha256"]
    assert model.sha256 in (model.path / "MODEL_CARD.md").read_text()
    assert "already loaded" in capsys.readouterr().out


def test_it_refuses_a_default_model_directory_with_other_weights(db, models_root):
    call_command("load_default_model")
    weights = models_root / "notionists-64" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\1")
    with pytest.raises(CommandError, match="registered with"):
        call_command("load_default_model")


def test_it_replaces_a_half_copied_default_model_directory(db, models_root):
    leftover = models_root / "notionists-64"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")
    call_command("load_default_model")
    assert GeneratorModel.objects.get().path == leftover
    assert not [p for p in models_root.iterdir() if p.name.startswith(".")]


def test_it_seeds_a_demo_brand_with_a_working_login(db, models_root, capsys):
    call_command("load_default_model")
    call_command("seed_demo", "--password", "demo-pass-123")
    call_command("seed_demo", "--password", "demo-pass-456")

    user = authenticate(username="demo", password="demo-pass-456")
    brand = Brand.objects.get(slug="demo")
    assert brand_role(user=user, brand=brand) == Role.OWNER
    persona = Persona.objects.for_brand(brand).get()
    assert (persona.handle, persona.seed) == ("ava", 42)
    assert persona.current_version.params["class_index"] == persona.model.class_names.index("light_jacket/waveLongArm")
    assert GenerationJob.objects.for_brand(brand).get().status == GenerationJob.Status.QUEUED
    assert "Log in as 'demo' with password 'demo-pass-456'" in capsys.readouterr().out
    reviewer = authenticate(username="demo-reviewer", password="demo-pass-456")
    assert brand_role(user=reviewer, brand=brand) == Role.REVIEWER


def test_it_refuses_to_seed_a_demo_without_the_default_model(db):
    with pytest.raises(CommandError, match="run `manage.py load_default_model` first"):
        call_command("seed_demo")


def test_it_gives_an_earlier_copy_of_the_bundled_model_its_identity_embedding(db, models_root, capsys):
    call_command("load_default_model")
    model = GeneratorModel.objects.get(slug="notionists-64")
    # A copy made before the model shipped its embedding, registered before measures were recorded.
    shutil.rmtree(model.path / "identity")
    GeneratorModel.objects.filter(pk=model.pk).update(identity_measure={})
    call_command("load_default_model")
    model.refresh_from_db()
    assert (model.path / "identity" / "identity.json").is_file()
    assert model.identity_measure["name"] == "learned" and model.identity_measure["threshold"] > 0.9
    assert "scores identity with: learned" in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="generator_model.identity_measure_changed").count() == 1
