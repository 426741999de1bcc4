import shutil
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from generation.layer_groups import layer_groups_default, layer_groups_validate
from generation.models import GeneratorModel
from generation.services.directions import directions_compute
from generation.services.registry import (
    DIRECTIONS_GRACE,
    generation_directions_sweep,
    generator_model_configure,
    generator_model_import,
)
from tests.conftest import PASSWORD, celery_broker
from tests.stylegan.conftest import shared_fixture


@pytest.fixture
def models_root(db, settings, tmp_path):
    settings.MODELS_ROOT = tmp_path / "models"
    return settings.MODELS_ROOT


@pytest.fixture
def reference_pickle():
    return shared_fixture("a_uncond_r32.G_ema.pkl")


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


def test_it_gives_a_new_model_coarse_middle_fine_groups_with_middle_as_identity(generator_model):
    assert generator_model.layer_groups == [
        {"name": "coarse", "start": 0, "end": 3},
        {"name": "middle", "start": 4, "end": 7},
        {"name": "fine", "start": 8, "end": 9},
    ]
    assert generator_model.identity_group == "middle" and generator_model.identity_rows == [4, 5, 6, 7]
    assert [g["name"] for g in layer_groups_default(6)] == ["coarse", "middle", "fine"]


@pytest.mark.parametrize(
    "groups, identity, message",
    [
        ([{"name": "a", "start": 0, "end": 10}], "a", r"within 0\.\.9"),
        ([{"name": "a", "start": 0, "end": 4}, {"name": "b", "start": 4, "end": 9}], "a", "overlap at W\\+ row 4"),
        ([{"name": "a", "start": 0, "end": 3}, {"name": "a", "start": 4, "end": 9}], "a", "unique"),
        ([{"name": "a", "start": 0, "end": 9}], "identity", "not one of the layer groups"),
        ([{"name": "A B", "start": 0, "end": 9}], "A B", "lower-case"),
        ([{"name": "a", "start": 3, "end": 1}], "a", "start ≤ end"),
    ],
)
def test_it_refuses_invalid_layer_groups(groups, identity, message):
    with pytest.raises(ValidationError, match=message):
        layer_groups_validate(groups, num_ws=10, identity_group=identity)


def test_it_renames_layer_groups_and_audits_it(generator_model, operator):
    groups = [
        {"name": "pose", "start": 0, "end": 2},
        {"name": "identity", "start": 3, "end": 6},
        {"name": "outfit", "start": 7, "end": 8},
        {"name": "colour", "start": 9, "end": 9},
    ]
    generator_model_configure(
        actor=operator,
        model=generator_model,
        layer_groups=groups,
        identity_group="identity",
        class_names=[],
        licence_note="Ours",
        identity_min_distance=1.5,
    )
    generator_model.refresh_from_db()
    assert generator_model.identity_rows == [3, 4, 5, 6]
    event = AuditEvent.objects.get(action="generator_model.configured")
    assert event.before["identity_group"] == "middle" and event.after["identity_group"] == "identity"


def test_it_imports_an_nvidia_pickle_with_the_command(models_root, reference_pickle, capsys):
    call_command("import_generator", str(reference_pickle), "--name", "Fixture r32", "--licence", "Test fixture only")
    model = GeneratorModel.objects.get(slug="fixture-r32")
    assert model.licence_note == "Test fixture only" and (models_root / "fixture-r32" / "weights.safetensors").is_file()
    assert model.num_ws == 8 and [g["name"] for g in model.layer_groups] == ["coarse", "middle", "fine"]
    assert "Imported fixture-r32" in capsys.readouterr().out


def test_it_imports_one_of_our_checkpoint_directories(models_root, checkpoint_dir, operator):
    model = generator_model_import(actor=operator, source=checkpoint_dir, name="Copy", slug="copy", licence_note="Ours")
    assert model.path == models_root / "copy" and model.sha256 == GeneratorModel.objects.get(slug="copy").sha256


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent.pkl"], "Cannot import /nonexistent.pkl"),
        (["/etc/hostname"], "neither a .pkl file nor a checkpoint directory"),
        (["{checkpoint}", "--class-names", "cat,dog"], "has 0 classes, but 2 class names"),
        (["{checkpoint}", "--licence", " "], "A licence note is required"),
    ],
)
def test_it_refuses_bad_imports_in_one_line(models_root, checkpoint_dir, args, message):
    args = [a.replace("{checkpoint}", str(checkpoint_dir)) for a in args]
    with pytest.raises(CommandError, match=message) as error:
        call_command("import_generator", *args[:1], "--name", "Bad", "--licence", "x", *args[1:])
    assert "\n" not in str(error.value)
    assert not GeneratorModel.objects.exists() and not (models_root / "bad").exists()


def test_it_lets_only_operators_import(models_root, checkpoint_dir, owner):
    with pytest.raises(PermissionDenied):
        generator_model_import(actor=owner, source=checkpoint_dir, name="X", slug="x", licence_note="x")


def test_it_imports_and_configures_models_in_the_admin(client, models_root, checkpoint_dir, operator):
    client.login(username="root", password=PASSWORD)
    url = reverse("admin:generation_generatormodel_import")
    assert b"Import a generator" in client.get(reverse("admin:generation_generatormodel_changelist")).content
    bad = client.post(url, {"source": "/nope", "name": "A", "slug": "a", "licence_note": "x"})
    assert bad.status_code == 200 and b"Cannot import /nope" in bad.content
    response = client.post(url, {"source": str(checkpoint_dir), "name": "A", "slug": "a", "licence_note": "Ours"})
    model = GeneratorModel.objects.get(slug="a")
    assert response.status_code == 302
    change = reverse("admin:generation_generatormodel_change", args=[model.pk])
    overlapping = '[{"name": "a", "start": 0, "end": 5}, {"name": "b", "start": 5, "end": 9}]'
    form = {
        "licence_note": "Ours",
        "class_names": "[]",
        "layer_groups": overlapping,
        "identity_group": "a",
        "identity_min_distance": "2.0",
    }
    assert b"overlap at W+ row 5" in client.post(change, form).content
    form["layer_groups"] = overlapping.replace('"start": 5', '"start": 6')
    assert client.post(change, form).status_code == 302
    model.refresh_from_db()
    assert model.identity_rows == [0, 1, 2, 3, 4, 5]
    assert AuditEvent.objects.filter(action="generator_model.configured", actor=operator).exists()


def test_it_computes_directions_for_every_layer_group_once(generator_model):
    from generation.services.directions import directions_compute

    created = directions_compute(model_id=generator_model.pk)
    assert created == 3 * (5 + 5) and directions_compute(model_id=generator_model.pk) == 0
    direction = generator_model.directions.model_wide().get(name="middle-sefa-0")
    assert direction.kind == "sefa" and direction.layer_group == "middle"
    assert direction.vector_array().shape == (512,) and abs(float((direction.vector_array() ** 2).sum()) - 1) < 1e-5
    assert direction.strength_min == -direction.strength_max < 0
    assert AuditEvent.objects.filter(action="generator_model.directions_computed").count() == 2


def test_it_queues_direction_finding_after_a_model_is_registered(
    models_root, checkpoint_dir, operator, django_capture_on_commit_callbacks, memory_broker
):
    with django_capture_on_commit_callbacks(execute=True):
        model = generator_model_import(actor=operator, source=checkpoint_dir, name="Q", slug="q", licence_note="Ours")
    assert memory_broker.sent("default") == [("generation.compute_directions", [model.pk])]


@pytest.mark.parametrize("slug", ["../escaped", "/tmp/absolute-model", "a/b", "UPPER", ".hidden"])
def test_it_refuses_a_slug_that_is_not_a_plain_directory_name_before_copying(models_root, checkpoint_dir, slug):
    with pytest.raises(CommandError, match="model slug"):
        call_command("import_generator", str(checkpoint_dir), "--name", "Escape", "--licence", "Ours", "--slug", slug)
    assert not (models_root.parent / "escaped").exists() and not Path("/tmp/absolute-model").exists()
    assert not models_root.exists() or not any(models_root.iterdir())
    assert not GeneratorModel.objects.exists()


def test_it_refuses_a_checkpoint_directory_holding_a_symlink(models_root, checkpoint_dir, tmp_path):
    source = tmp_path / "with-link"
    shutil.copytree(checkpoint_dir, source)
    (source / "notes.txt").symlink_to("/etc/passwd")
    with pytest.raises(CommandError, match="symlink"):
        call_command("import_generator", str(source), "--name", "Linked", "--licence", "Ours", "--slug", "linked")
    assert not (models_root / "linked").exists() and not GeneratorModel.objects.exists()
    assert not models_root.exists() or not any(models_root.iterdir())  # no staging directory left behind


def test_it_imports_into_models_root_through_a_staging_directory(models_root, checkpoint_dir, monkeypatch):
    import generation.rendering

    written_to = []
    real_import = generation.rendering.checkpoint_import

    def recording_import(*, source, directory):
        written_to.append(directory)
        return real_import(source=source, directory=directory)

    monkeypatch.setattr(generation.rendering, "checkpoint_import", recording_import)
    call_command("import_generator", str(checkpoint_dir), "--name", "Staged", "--licence", "Ours", "--slug", "staged")
    [staged] = written_to
    assert staged.parent.parent == models_root.resolve() and staged.parent.name.startswith(".import-")
    assert sorted(p.name for p in models_root.iterdir()) == ["staged"]
    assert (models_root / "staged" / "weights.safetensors").is_file()


def test_only_operators_configure_models(generator_model, owner):
    with pytest.raises(PermissionDenied):
        generator_model_configure(
            actor=owner, model=generator_model, layer_groups=generator_model.layer_groups, identity_group="middle",
            class_names=[], licence_note="Taken over", identity_min_distance=0,
        )  # fmt: skip
    generator_model.refresh_from_db()
    assert generator_model.identity_min_distance > 0 and generator_model.licence_note != "Taken over"


def test_an_imported_conditional_checkpoint_renders_nvidias_truncation(models_root, tmp_path):
    """Registry and rendering use the checkpoint's centre: an imported .pkl truncates
    towards w_avg, exactly as NVIDIA's generate.py does, class label and all."""
    import torch

    from generation.rendering import generator_get, latents_from_seeds
    from generation.stylegan import GeneratorConfig, random_generator, seed_to_z
    from tests.stylegan.nvidia_format import generator_record, write_checkpoint

    config = GeneratorConfig(
        z_dim=16, w_dim=16, c_dim=3, img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2,
        truncation_centre="class",
    )  # fmt: skip
    G = random_generator(config, seed=3)
    G.mapping.w_avg.copy_(torch.randn(16, generator=torch.Generator().manual_seed(1)))
    source = write_checkpoint(tmp_path / "conditional.pkl", {"G_ema": generator_record(G)})
    model = generator_model_import(
        actor=None, source=source, name="Imported", slug="imported", licence_note="Test", class_names=["a", "b", "c"]
    )
    assert model.truncation_centre == "global"
    imported = generator_get(model=model, device="cpu")
    with torch.no_grad():
        z = torch.stack([seed_to_z(seed, 16) for seed in (1, 2)])
        w = imported.mapping(z, torch.eye(3)[[1, 1]], truncation_psi=1.0).numpy()
    w_avg = imported.mapping.w_avg.numpy()
    latents = latents_from_seeds(model=model, seeds=[1, 2], truncation_psi=0.7, class_index=1)
    # NVIDIA's mapping computes w_avg.lerp(w, psi): bit for bit the same, and w_avg + psi (w - w_avg) to rounding.
    np.testing.assert_array_equal(latents, torch.from_numpy(w_avg).lerp(torch.from_numpy(w), 0.7).numpy())
    np.testing.assert_allclose(latents, w_avg + np.float32(0.7) * (w - w_avg), rtol=0, atol=1e-6)


def test_the_bundled_default_is_registered_with_its_class_centre(models_root):
    call_command("load_default_model")
    model = GeneratorModel.objects.get(slug="notionists-64")
    assert model.truncation_centre == "class" and model.config["truncation_centre"] == "class"


def test_it_leaves_no_directory_behind_when_registration_fails_for_any_reason(models_root, checkpoint_dir, monkeypatch):
    import generation.rendering

    def calibration_crashes(*, model):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(generation.rendering, "identity_calibrate", calibration_crashes)
    with pytest.raises(RuntimeError, match="out of memory"):
        generator_model_import(actor=None, source=checkpoint_dir, name="X", slug="crashy", licence_note="Ours")
    assert not GeneratorModel.objects.exists() and not any(models_root.iterdir())


def test_it_keeps_the_identity_rows_of_a_model_with_personas(generator_model, operator, persona):
    groups = [dict(g) for g in generator_model.layer_groups]
    configure = dict(
        actor=operator, model=generator_model, class_names=[], licence_note="Ours", identity_min_distance=1.0
    )
    renamed = [{**g, "name": "face" if g["name"] == "middle" else g["name"]} for g in groups]
    generator_model_configure(layer_groups=renamed, identity_group="face", **configure)  # same rows: fine
    recut = [
        {"name": "coarse", "start": 0, "end": 2},
        {"name": "face", "start": 3, "end": 7},
        {"name": "fine", "start": 8, "end": 9},
    ]
    with pytest.raises(ValidationError, match="identity rows can no longer change"):
        generator_model_configure(layer_groups=recut, identity_group="face", **configure)
    generator_model.refresh_from_db()
    assert generator_model.identity_rows == [4, 5, 6, 7]


def test_it_registers_a_model_while_the_broker_is_down_and_the_sweep_asks_for_its_directions_later(
    models_root, checkpoint_dir, operator, django_capture_on_commit_callbacks, memory_broker, caplog
):
    with celery_broker("redis://127.0.0.1:1/0"), django_capture_on_commit_callbacks(execute=True):
        model = generator_model_import(actor=operator, source=checkpoint_dir, name="Q", slug="q", licence_note="Ours")
    assert GeneratorModel.objects.filter(pk=model.pk).exists()
    assert "Directions of model" in caplog.text and "not requested yet" in caplog.text
    assert memory_broker.sent("default") == []

    assert generation_directions_sweep() == 0  # too recent: its request may still be on its way
    GeneratorModel.objects.filter(pk=model.pk).update(created_at=timezone.now() - DIRECTIONS_GRACE)
    assert generation_directions_sweep() == 1
    assert memory_broker.sent("default") == [("generation.compute_directions", [model.pk])]

    directions_compute(model_id=model.pk)
    assert generation_directions_sweep() == 0
