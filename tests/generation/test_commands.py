import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from avatars.models import Persona
from brands.models import Brand, Role
from brands.selectors import brand_role
from generation.models import GenerationJob, GeneratorModel


@pytest.fixture
def models_root(settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    return settings.MODELS_ROOT


def test_it_loads_the_default_model_once(db, models_root, capsys):
    call_command("load_default_model")
    call_command("load_default_model")
    model = GeneratorModel.objects.get()
    assert model.slug == "random-placeholder-64"
    assert "Random weights placeholder" in model.name and "random weights placeholder" in model.licence_note.lower()
    assert (model.num_ws, model.w_dim, model.img_resolution) == (10, 512, 64)
    assert model.path == models_root / "random-placeholder-64"
    assert "already loaded" in capsys.readouterr().out


def test_it_refuses_a_default_model_directory_with_other_weights(db, models_root):
    call_command("load_default_model")
    weights = models_root / "random-placeholder-64" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\1")
    with pytest.raises(CommandError, match="registered with"):
        call_command("load_default_model")


def test_it_seeds_a_demo_brand_with_a_working_login(db, models_root, capsys):
    call_command("load_default_model")
    call_command("seed_demo", "--password", "demo-pass-123")
    call_command("seed_demo", "--password", "demo-pass-456")

    user = authenticate(username="demo", password="demo-pass-456")
    brand = Brand.objects.get(slug="demo")
    assert brand_role(user=user, brand=brand) == Role.OWNER
    persona = Persona.objects.for_brand(brand).get()
    assert (persona.handle, persona.seed) == ("ava", 42)
    assert GenerationJob.objects.for_brand(brand).get().status == GenerationJob.Status.QUEUED
    assert "Log in as 'demo' with password 'demo-pass-456'" in capsys.readouterr().out


def test_it_refuses_to_seed_a_demo_without_the_default_model(db):
    with pytest.raises(CommandError, match="run `manage.py load_default_model` first"):
        call_command("seed_demo")
