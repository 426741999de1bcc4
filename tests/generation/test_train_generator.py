"""manage.py train_generator: a thin adapter over the training engine and the registry."""

import pytest
from django.core.management import CommandError, call_command

from generation.models import GeneratorModel
from generation.stylegan.training.dataset import render_demo_dataset


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    render_demo_dataset(directory, 16, size=16, seed=0)
    return directory


TINY = ["--", "--preset", "tiny", "--steps", "2", "--batch", "4", "--threads", "1", "--log-seconds", "60"]


def test_it_trains_writes_a_model_card_and_registers_the_model(db, settings, tmp_path, demo_dataset):
    settings.MODELS_ROOT = tmp_path / "models"
    call_command(
        "train_generator", "--name", "Tiny notionists", "--licence", "Trained here on CC0 art; ours to use",
        str(demo_dataset), str(tmp_path / "run"), *TINY,
    )  # fmt: skip
    model = GeneratorModel.objects.get(slug="tiny-notionists")
    assert model.licence_note == "Trained here on CC0 art; ours to use"
    assert len(model.class_names) == model.config["c_dim"] > 0
    card = (settings.MODELS_ROOT / "tiny-notionists" / "MODEL_CARD.md").read_text()
    assert "CC0 1.0" in card and "Training images seen: 8 " in card and model.sha256 in card
    assert (
        "![samples.png](samples.png)" in card and (settings.MODELS_ROOT / "tiny-notionists" / "samples.png").is_file()
    )


def test_it_refuses_a_taken_slug_before_training(db, settings, tmp_path, demo_dataset, generator_model):
    settings.MODELS_ROOT = tmp_path / "models"
    with pytest.raises(CommandError, match="already exists"):
        call_command(
            "train_generator", "--name", "x", "--slug", generator_model.slug, "--licence", "ours",
            str(demo_dataset), str(tmp_path / "run"), *TINY,
        )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_it_explains_bad_training_options(db, tmp_path, demo_dataset):
    with pytest.raises(CommandError, match="bad training options"):
        call_command(
            "train_generator", "--name", "x", "--licence", "ours", str(demo_dataset), str(tmp_path / "run"),
            "--", "--preset", "huge",
        )  # fmt: skip
