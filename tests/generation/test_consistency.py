"""Identity scores of renders on the tests' random-weights model (no identity embedding:
the pixel fallback) and on the bundled default (its learned embedding)."""

import io

import numpy as np
from PIL import Image

from avatars.services import library_item_create, persona_create_from_seed, persona_library_apply, persona_render_submit
from content.models import Asset
from generation.rendering import latent_from_seed, latents_thumbnails
from generation.services.directions import directions_compute
from generation.services.jobs import generation_job_run
from generation.stylegan.identity import PixelStructureIdentity, identity_similarity

SEEDS = (1, 2, 3)


def renders(model, latents):
    """Pixels of each latent, rendered in one batch (the metric only sees pixels)."""
    return [
        np.asarray(Image.open(io.BytesIO(png))) for png in latents_thumbnails(model=model, latents=np.stack(latents))
    ]


def test_it_stays_high_under_looks_and_poses_and_drops_when_the_identity_changes(owner, brand, generator_model):
    directions_compute(model_id=generator_model.pk)
    pose_direction = generator_model.directions.model_wide().get(name="coarse-sefa-0")
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=500
    )
    pose = library_item_create(
        actor=owner,
        brand=brand,
        model=generator_model,
        kind="pose",
        name="p",
        layer_group="coarse",
        direction=pose_direction,
        strength=pose_direction.strength_max / 2,
    )
    kinds = ("look", "pose", "identity")
    latents = []
    for seed in SEEDS:
        persona = persona_create_from_seed(
            actor=owner, brand=brand, model=generator_model, seed=seed, name=f"P{seed}", handle=f"p{seed}"
        )
        reference = persona.latent_array()
        other_identity = reference.copy()
        rows = generator_model.identity_rows
        other_identity[rows] = latent_from_seed(model=generator_model, seed=1000 + seed, truncation_psi=0.7)[rows]
        latents += [
            reference,
            persona_library_apply(actor=owner, brand=brand, persona=persona, item=look).latent_array(),
            persona_library_apply(actor=owner, brand=brand, persona=persona, item=pose).latent_array(),
            other_identity,
        ]
    images = renders(generator_model, latents)
    scores = {kind: [] for kind in kinds}
    for i in range(0, len(images), 4):
        for kind, image in zip(kinds, images[i + 1 : i + 4], strict=True):
            scores[kind].append(identity_similarity(PixelStructureIdentity(), image, images[i]))
    mean = {kind: float(np.mean(values)) for kind, values in scores.items()}
    assert mean["look"] > 0.8 and mean["pose"] > 0.8, mean
    assert mean["identity"] < min(mean["look"], mean["pose"]) - 0.15, mean
    assert all(
        i < max(look, pose) for i, look, pose in zip(scores["identity"], scores["look"], scores["pose"], strict=True)
    ), scores


def test_it_scores_every_rendered_asset_against_the_first_version(owner, brand, persona, generator_model, media_root):
    first = persona_render_submit(actor=owner, brand=brand, persona=persona)
    look = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="l", layer_group="fine", seed=9
    )
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    second = persona_render_submit(actor=owner, brand=brand, persona=persona)
    for job in (first, second):
        generation_job_run(job_id=job.pk)
    assets = {a.job_id: a for a in Asset.objects.for_brand(brand)}
    assert assets[first.pk].identity_consistency == 1.0
    assert 0.5 < assets[second.pk].identity_consistency < 1.0
    assert assets[second.pk].metadata["provenance"]["identity_reference_version"] == 1


def test_it_scores_with_the_bundled_models_embedding_and_says_what_it_means(owner, brand, bundled_model, media_root):
    persona = persona_create_from_seed(
        actor=owner, brand=brand, model=bundled_model, seed=42, name="Ava", handle="ava", class_index=13
    )
    first = persona_render_submit(actor=owner, brand=brand, persona=persona)
    look = library_item_create(actor=owner, brand=brand, model=bundled_model, kind="look", name="Tie", value="tie")
    persona_library_apply(actor=owner, brand=brand, persona=persona, item=look)
    second = persona_render_submit(actor=owner, brand=brand, persona=persona)
    for job in (first, second):
        generation_job_run(job_id=job.pk)
    assets = {a.job_id: a for a in Asset.objects.for_brand(brand).select_related("persona__model")}
    threshold = bundled_model.identity_measure["threshold"]
    assert assets[first.pk].identity_meaning == f"same person: 1.00, threshold {threshold:.2f}"
    score = assets[second.pk].identity_consistency
    assert -1 <= score < 1
    verdict = "same person" if score >= threshold else "not the same person"
    assert assets[second.pk].identity_meaning == f"{verdict}: {score:.2f}, threshold {threshold:.2f}"
