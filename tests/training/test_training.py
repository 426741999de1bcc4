"""The training package: demo dataset, discriminator, augmentation, loop, resume, export,
metrics and the command line. Tiny configurations (16×16, a few thousand parameters) so
the whole module runs in well under a minute on two cores; no database."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from generation import stylegan as sg
from generation.stylegan.training.augment import diff_augment
from generation.stylegan.training.dataset import CLOTHES_FAMILIES, GESTURES, load_dataset, render_demo_dataset
from generation.stylegan.training.discriminator import Discriminator, DiscriminatorConfig
from generation.stylegan.training.loop import TrainOptions, cpu_precision, train
from generation.stylegan.training.losses import GanLoss, LossConfig
from generation.stylegan.training.metrics import (
    MetricOptions,
    evaluate,
    frechet_distance,
    load_classifier,
    save_classifier,
    train_classifier,
)
from generation.stylegan.training.model_card import write_model_card

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo")
    render_demo_dataset(directory, 48, size=16, seed=0)
    return directory


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    directory = tmp_path_factory.mktemp("heldout")
    render_demo_dataset(directory, 24, size=16, seed=1)
    return directory


def digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(directory)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def tiny_options(data: Path, run_dir: Path, **kwargs) -> TrainOptions:
    base = dict(
        preset="tiny", batch=4, log_seconds=1e9, snapshot_kimg=1e9, augment="color,translation,cutout", r1_interval=2
    )
    return TrainOptions(data=str(data), run_dir=str(run_dir), **{**base, **kwargs})


def test_it_renders_the_demo_dataset_deterministically_with_exact_labels(demo, tmp_path):
    again = tmp_path / "again"
    render_demo_dataset(again, 48, size=16, seed=0)
    assert digest(again) == digest(demo)

    manifest = json.loads((demo / "dataset.json").read_text())
    assert len(manifest["labels"]) == 48
    assert manifest["source"]["flipped"] is False
    assert "CC0" in (demo / "LICENSE.txt").read_text()
    for name, index in manifest["labels"].items():
        attrs = manifest["attributes"][name]
        assert manifest["class_names"][index] == f"{attrs['outfit']}/{attrs['gesture']}"
        assert attrs["clothes"] in CLOTHES_FAMILIES[attrs["outfit"]]
        assert attrs["gesture"] in GESTURES
    assert sorted(v for f in CLOTHES_FAMILIES.values() for v in f) == [f"variant{i:02d}" for i in range(1, 26)]

    dataset = load_dataset(demo)
    assert dataset.images.shape == (48, 3, 16, 16)
    assert dataset.c_dim == len(CLOTHES_FAMILIES) * len(GESTURES)


def test_it_renders_the_labelled_attributes_dicebear_was_asked_for():
    from generation.stylegan.training.dataset import NotionistsRenderer

    renderer = NotionistsRenderer()
    with_ok = renderer.svg("s", "variant05", "ok")
    without = renderer.svg("s", "variant05", "none")
    assert with_ok != without
    assert renderer.svg("s", "variant05", "ok") == with_ok


def test_it_scores_images_with_a_conditional_discriminator():
    config = DiscriminatorConfig(c_dim=3, img_resolution=16, channel_base=128, channel_max=16)
    D = Discriminator(config)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    c = torch.eye(3)[[0, 1, 2, 0]]
    logits = D(img, c)
    assert logits.shape == (4, 1)
    (grad,) = torch.autograd.grad(logits.sum(), img)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError):
        D(img)


def test_it_predicts_classes_with_an_auxiliary_head_only_when_it_has_one():
    config = DiscriminatorConfig(c_dim=3, img_resolution=16, channel_base=128, channel_max=16, aux_classifier=True)
    D = Discriminator(config)
    img = torch.randn(4, 3, 16, 16)
    c = torch.eye(3)[[0, 1, 2, 0]]
    logits, class_logits = D(img, c, classify=True)
    assert logits.shape == (4, 1) and class_logits.shape == (4, 3)
    assert torch.equal(D(img, c), logits)
    plain = Discriminator(DiscriminatorConfig(c_dim=3, img_resolution=16, channel_base=128, channel_max=16))
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        plain(img, c, classify=True)
    with pytest.raises(ValueError, match="needs class labels"):
        DiscriminatorConfig(c_dim=0, img_resolution=16, aux_classifier=True)


def test_it_pushes_the_images_of_paired_latents_apart_when_mode_seeking():
    torch.manual_seed(0)
    G = sg.Generator(
        sg.GeneratorConfig(z_dim=16, w_dim=16, c_dim=3, img_resolution=16, channel_base=128, channel_max=16)
    )
    D = Discriminator(DiscriminatorConfig(c_dim=3, img_resolution=16, channel_base=128, channel_max=16))
    D.requires_grad_(False)
    loss = GanLoss(G, D, LossConfig(style_mixing_prob=0, mode_seeking_weight=1.0))
    z = torch.randn(8, 16)
    c = torch.eye(3)[[0, 1, 2, 0, 2, 2, 1, 1]]
    paired = torch.cat([c[:4], c[:4]])

    def pair_distance() -> float:
        with torch.no_grad():
            img = G(z, paired, noise_mode="const")
        return (img[:4] - img[4:]).abs().mean().item()

    optimizer = torch.optim.Adam(G.parameters(), lr=0.002)
    before = pair_distance()
    for _ in range(5):
        optimizer.zero_grad()
        total, stats = loss.generator_loss(z, c)
        total.backward()
        optimizer.step()
    assert set(stats) == {"G", "G_seek"}
    assert pair_distance() > 1.5 * before


def test_it_augments_differentiably_and_never_flips():
    torch.manual_seed(0)
    # An image that is bright on the left: a flip would move the brightness right.
    x = torch.full((64, 3, 16, 16), -1.0)
    x[:, :, :, :4] = 1.0
    x.requires_grad_(True)
    y = diff_augment(x, "translation", fill=-1.0)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert grad.abs().sum() > 0
    left = y[:, :, :, :8].mean(dim=[1, 2, 3])
    right = y[:, :, :, 8:].mean(dim=[1, 2, 3])
    assert (left > right).all()
    z = diff_augment(x, "color,translation,cutout")
    (grad,) = torch.autograd.grad(z.sum(), x)
    assert torch.isfinite(grad).all()
    with pytest.raises(ValueError):
        diff_augment(x, "flip")


def test_it_trains_with_finite_losses_and_exports_a_loadable_generator(demo, tmp_path):
    lines = []
    summary = train(tiny_options(demo, tmp_path / "run", steps=4, log_seconds=0), log=lines.append)
    assert summary["images_seen"] == 16 and summary["steps"] == 4
    assert any("img/s" in line and "ETA" in line and "kimg" in line for line in lines)
    assert (tmp_path / "run" / "samples" / "reals.png").is_file()
    assert list((tmp_path / "run" / "samples").glob("fakes*.png"))

    G = sg.load_generator(tmp_path / "run" / "export", expected_sha256=summary["weights_sha256"])
    assert G.config.c_dim == 60 and G.config.img_resolution == 16
    z = sg.seed_to_z(0, G.config.z_dim)[None]
    img = G(z, sg.class_label(G.config, 7)[None])
    assert torch.isfinite(img).all()
    info = json.loads((tmp_path / "run" / "export" / "training.json").read_text())
    assert info["images_seen"] == 16 and len(info["class_names"]) == 60
    assert info["dataset_source"]["license"]["name"] == "CC0 1.0"


def test_models_trained_here_record_truncation_towards_the_class_centre(demo, tmp_path):
    def centre(directory: Path) -> str:
        return json.loads((directory / "config.json").read_text())["generator"]["truncation_centre"]

    train(tiny_options(demo, tmp_path / "run", steps=1), log=lambda line: None)
    assert centre(tmp_path / "run" / "export") == centre(tmp_path / "run" / "checkpoint" / "G_ema") == "class"
    assert sg.load_generator(tmp_path / "run" / "export").truncation_centre == "class"

    # A run begun before configs recorded the centre resumes and exports as trained here.
    for network in ("G", "G_ema"):
        path = tmp_path / "run" / "checkpoint" / network / "config.json"
        config = json.loads(path.read_text())
        del config["generator"]["truncation_centre"]
        path.write_text(json.dumps(config))
    train(tiny_options(demo, tmp_path / "run", steps=2), log=lambda line: None)
    assert centre(tmp_path / "run" / "export") == centre(tmp_path / "run" / "checkpoint" / "G_ema") == "class"

    # Fine-tuning an imported model ("global") makes a model trained here.
    parent = sg.load_generator(tmp_path / "run" / "export").set_truncation_centre("global")
    sg.save_generator(parent, tmp_path / "imported")
    train(tiny_options(demo, tmp_path / "child", steps=1, init_from=str(tmp_path / "imported")), log=lambda line: None)
    assert centre(tmp_path / "child" / "export") == "class"


def test_it_trains_in_bf16_only_on_cpus_with_native_bf16_instructions():
    assert cpu_precision(avx512_bf16=True, amx=False) == "bf16"
    assert cpu_precision(avx512_bf16=False, amx=True) == "bf16"
    # AVX-512 without BF16 (and AVX2) would emulate bf16, several times slower than fp32.
    assert cpu_precision(avx512_bf16=False, amx=False) == "fp32"


@pytest.mark.parametrize(
    "terms", [{}, {"class_weight": 1.0, "mode_seeking": 0.1}], ids=["plain", "class-loss+mode-seeking"]
)
def test_it_resumes_from_a_checkpoint_exactly_as_an_uninterrupted_run(demo, tmp_path, terms):
    train(tiny_options(demo, tmp_path / "straight", steps=4, **terms), log=lambda line: None)
    train(tiny_options(demo, tmp_path / "resumed", steps=2, **terms), log=lambda line: None)
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["counters"]["step"] == 2
    lines = []
    summary = train(tiny_options(demo, tmp_path / "resumed", steps=4, log_seconds=0, **terms), log=lines.append)
    assert any("resuming" in line for line in lines)
    if terms:
        assert all(name in lines[-2] for name in ("G_class", "G_seek", "D_class")), lines[-2]
    assert summary["steps"] == 4
    for name in ("export/weights.safetensors", "checkpoint/D.safetensors", "checkpoint/G/weights.safetensors"):
        a = load_file(str(tmp_path / "straight" / name))
        b = load_file(str(tmp_path / "resumed" / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)


def test_it_fine_tunes_a_trained_generator_holding_it_still_while_the_new_discriminator_warms_up(demo, tmp_path):
    parent = train(tiny_options(demo, tmp_path / "parent", steps=4), log=lambda line: None)
    parent_weights = load_file(str(tmp_path / "parent" / "export" / "weights.safetensors"))
    fine_tune = dict(init_from=str(tmp_path / "parent" / "export"), d_warmup_kimg=0.008)  # two steps of batch 4
    lines = []
    train(tiny_options(demo, tmp_path / "child", steps=2, preset="half64", **fine_tune), log=lines.append)
    assert any("fine-tuning" in line for line in lines)
    held = load_file(str(tmp_path / "child" / "checkpoint" / "G" / "weights.safetensors"))
    assert all(torch.equal(held[key], parent_weights[key]) for key in parent_weights)

    summary = train(tiny_options(demo, tmp_path / "child", steps=4, **fine_tune), log=lambda line: None)
    tuned = load_file(str(tmp_path / "child" / "checkpoint" / "G" / "weights.safetensors"))
    assert not all(torch.equal(tuned[key], parent_weights[key]) for key in parent_weights)
    info = json.loads((tmp_path / "child" / "export" / "training.json").read_text())
    assert info["initialized_from"]["weights_sha256"] == parent["weights_sha256"]
    assert info["images_seen"] == 16 and info["images_seen_total"] == 32
    assert summary["images_seen_total"] == 32
    card = write_model_card(tmp_path / "child" / "export", name="Tuned", licence_note="ours").read_text()
    assert f"Fine-tuned from generator `{parent['weights_sha256'][:12]}…`" in card and "32 images seen" in card


def test_it_refuses_to_fine_tune_a_generator_that_does_not_fit_the_dataset(demo, tmp_path):
    train(tiny_options(demo, tmp_path / "parent", steps=1, conditional=False), log=lambda line: None)
    with pytest.raises(ValueError, match="0 classes; this dataset has 16×16×3 images of 60 classes"):
        options = tiny_options(demo, tmp_path / "child", steps=1, init_from=str(tmp_path / "parent" / "export"))
        train(options, log=lambda line: None)


def test_it_measures_conditioning_frechet_distance_and_diversity(demo, heldout, tmp_path):
    train(tiny_options(demo, tmp_path / "run", steps=2), log=lambda line: None)
    G = sg.load_generator(tmp_path / "run" / "export")
    classifier = train_classifier(load_dataset(demo), epochs=1, batch=16)
    save_classifier(classifier, tmp_path / "clf", {})
    classifier, _ = load_classifier(tmp_path / "clf")
    options = MetricOptions(per_class=1, diversity_seeds=4, diversity_classes=2)
    results = evaluate(G, classifier, load_dataset(heldout), options)
    assert set(results["conditioning_accuracy"]) == {"outfit", "gesture"}
    assert 0 <= results["conditioning_accuracy"]["outfit"] <= 1
    assert results["frechet_distance"] >= 0
    assert 0 <= results["diversity"]["duplicate_fraction"] <= 1
    assert results["diversity"]["pixel_spread_vs_real"] > 0
    assert results["conditioning_accuracy_truncated"]["psi"] == 0.7
    assert results["conditioning_accuracy_truncated"]["truncation_centre"] == "class"
    assert set(results["conditioning_accuracy_truncated"]["accuracy"]) == {"outfit", "gesture"}
    (tmp_path / "run" / "export" / "metrics.json").write_text(json.dumps(results))
    card = write_model_card(tmp_path / "run" / "export", name="Measured", licence_note="ours").read_text()
    gesture = results["conditioning_accuracy_truncated"]["accuracy"]["gesture"]
    assert (
        "| Conditioning accuracy, gesture, truncated to ψ 0.7 (personas' default; towards the class's centre) | "
        f"{gesture * 100:.1f}% |"
    ) in card
    results["conditioning_accuracy_truncated"]["truncation_centre"] = "global"  # as measured on an imported model
    (tmp_path / "run" / "export" / "metrics.json").write_text(json.dumps(results))
    card = write_model_card(tmp_path / "run" / "export", name="Measured", licence_note="ours").read_text()
    assert "truncated to ψ 0.7 (personas' default; towards the global mean w_avg)" in card


def test_it_computes_the_frechet_distance_of_known_gaussians():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=gen, dtype=torch.float64).numpy()
    b = (torch.randn(20000, 3, generator=gen, dtype=torch.float64) * 2 + 1).numpy()
    # ||mu||^2 = 3; Tr(I + 4I - 2 * 2I) = 3.
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--channel-max", "100000"], "channel_max must be a whole number in 1..1024, got 100000"),
        (["--z-dim", "1000000000"], "z_dim must be a whole number in 1..2048, got 1000000000"),
        (["--mapping-layers", "1000"], "mapping_layers must be a whole number in 1..16, got 1000"),
    ],
)
def test_it_refuses_an_absurd_architecture_in_one_line_before_building_it(demo, tmp_path, argv, message):
    command = [sys.executable, "-m", "generation.stylegan.training", "train", str(demo), str(tmp_path / "run"), *argv]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_it_exits_with_one_line_on_bad_arguments(tmp_path):
    bad = (
        (["train", str(tmp_path / "missing"), str(tmp_path / "run")], "missing"),
        (
            ["train", str(tmp_path), str(tmp_path / "run"), "--unconditional", "--class-loss", "1"],
            "class-loss needs class labels",
        ),
        (["dataset", str(tmp_path), "--count", "0"], "at least 1"),
        (["nope"], "nope"),
    )
    for argv, message in bad:
        command = [sys.executable, "-m", "generation.stylegan.training", *argv]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert out.returncode != 0
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert message in out.stderr, out.stderr


@pytest.fixture(scope="module")
def identity_parts(demo, tmp_path_factory):
    """A (random) identity embedding and a one-epoch attribute teacher, saved as training reads them."""
    from generation.stylegan.identity import IdentityCalibration, IdentityNetwork, LearnedIdentity
    from generation.stylegan.training.metrics import save_classifier, train_classifier

    root = tmp_path_factory.mktemp("identity-parts")
    torch.manual_seed(0)
    calibration = IdentityCalibration(threshold=0.9, same_person_median=0.95, different_person_median=0.1)
    LearnedIdentity(IdentityNetwork(width=8, dim=16), calibration).save(root / "identity")
    save_classifier(train_classifier(load_dataset(demo), epochs=1), root / "teacher", {"epochs": 1})
    return root


def test_it_trains_with_the_identity_term(demo, tmp_path, identity_parts):
    lines = []
    options = tiny_options(
        demo, tmp_path / "run", steps=2, log_seconds=0, identity=str(identity_parts / "identity"),
        teacher=str(identity_parts / "teacher"), identity_weight=1.0, identity_diversity=1.0, identity_batch=4,
    )  # fmt: skip
    train(options, log=lines.append)
    progress = next(line for line in lines if "G_id_keep" in line)
    assert "G_id_teacher" in progress and "G_id_other" in progress
    assert (tmp_path / "run" / "export" / "weights.safetensors").is_file()


def test_the_identity_term_needs_an_embedding_and_a_teacher(demo, tmp_path, identity_parts):
    identity = str(identity_parts / "identity")
    options = tiny_options(demo, tmp_path / "run", steps=1, identity=identity, identity_weight=1)
    with pytest.raises(ValueError, match="needs --identity .* --teacher"):
        train(options, log=lambda line: None)
