import io

import numpy as np
import pytest
import torch
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from PIL import Image

from audit.models import AuditEvent
from avatars.models import PersonaVersion
from avatars.services import library_item_create, persona_create_from_seed
from campaigns.models import Campaign, CampaignItem
from campaigns.selectors import campaign_items, campaign_progress
from campaigns.services import campaign_cancel, campaign_estimate, campaign_item_retry, campaign_submit
from content.formats import FORMATS, disclosure_read
from content.models import Asset
from generation.models import GenerationJob, WorkerThroughput
from generation.services.jobs import generation_job_run
from generation.services.registry import generator_model_register
from generation.stylegan import random_generator, save_generator
from tests.conftest import PLACEHOLDER_CONFIG

Status = GenerationJob.Status


@pytest.fixture
def look(owner, brand, generator_model):
    return library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="look", name="Denim", layer_group="fine", seed=500
    )


@pytest.fixture
def pose(owner, brand, generator_model):
    return library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="pose", name="Wave", layer_group="coarse", seed=501
    )


def submit(owner, brand, persona, **changes):
    arguments = dict(name="Spring", versions=[persona.current_version], formats=["1:1"], variants=1) | changes
    return campaign_submit(actor=owner, brand=brand, **arguments)


def run_all(campaign):
    for item in CampaignItem.objects.unscoped().filter(campaign=campaign):
        generation_job_run(job_id=item.job_id)


def test_it_queues_one_job_per_item_of_the_matrix(
    owner, brand, persona, look, pose, django_capture_on_commit_callbacks
):  # noqa: E501
    with django_capture_on_commit_callbacks() as callbacks:
        campaign = submit(owner, brand, persona, looks=[look], poses=[pose], formats=["1:1", "9:16"], variants=2)

    items = campaign_items(brand=brand, campaign=campaign)
    assert len(items) == 1 * 1 * 1 * 2 * 2
    recipes = {(i.look_id, i.pose_id, i.output_format, i.variant) for i in items}
    assert recipes == {(look.pk, pose.pk, fmt, v) for fmt in ("1:1", "9:16") for v in (0, 1)}
    assert {item.job.batch_key for item in items} == {campaign.batch_key}
    assert {item.job.noise_seed for item in items} == {None, 1}
    assert len(callbacks) == 1  # one dispatch of every job, after commit
    assert campaign.estimate["images"] == 4 and campaign.estimate["renders"] == 2
    assert AuditEvent.objects.for_brand(brand).filter(action="campaign.submitted").count() == 1


def test_it_never_changes_the_persona(owner, brand, persona, look, pose, media_root):
    versions_before = list(PersonaVersion.objects.for_brand(brand).filter(persona=persona).values_list("sha256"))
    campaign = submit(owner, brand, persona, looks=[look], poses=[pose])
    run_all(campaign)

    persona.refresh_from_db()
    assert list(PersonaVersion.objects.for_brand(brand).filter(persona=persona).values_list("sha256")) == (
        versions_before
    )
    [item] = campaign_items(brand=brand, campaign=campaign)
    rendered = item.job.render_latent()
    pinned = persona.current_version.latent_array()
    identity = persona.model.identity_rows
    # The look and the pose changed their own rows; the identity rows are the pinned version's.
    assert np.array_equal(rendered[identity], pinned[identity])
    assert np.array_equal(rendered[persona.model.layer_group_rows("fine")], look.source_array()[8:])
    assert not np.array_equal(rendered, pinned)


def test_it_renders_every_format_at_its_publishable_size_with_derivatives(owner, brand, persona, media_root):
    campaign = submit(owner, brand, persona, formats=list(FORMATS))
    run_all(campaign)

    for item in campaign_items(brand=brand, campaign=campaign):
        asset = item.job.asset
        master = default_storage.open(asset.image.name).read()
        assert Image.open(io.BytesIO(master)).size == FORMATS[item.output_format]
        assert (asset.width, asset.height) == FORMATS[item.output_format]
        disclosure = disclosure_read(master)
        assert disclosure["ai_generated"] and disclosure["format"] == item.output_format and disclosure["draft"]
        web = Image.open(default_storage.open(asset.web.name))
        thumbnail = Image.open(default_storage.open(asset.thumbnail.name))
        assert (web.format, web.width) == ("JPEG", 1080) and (thumbnail.format, thumbnail.width) == ("WEBP", 256)
        assert disclosure_read(default_storage.open(asset.web.name).read())["ai_generated"]


def test_it_records_full_provenance_on_every_asset(owner, brand, persona, look, media_root):
    campaign = submit(owner, brand, persona, looks=[look], variants=2)
    run_all(campaign)

    item = campaign_items(brand=brand, campaign=campaign)[1]
    provenance = item.job.asset.metadata["provenance"]
    assert provenance["model_sha256"] == persona.model.sha256
    assert provenance["latent_sha256"] == persona.current_version.sha256
    look_params = {
        "id": look.pk, "name": "Denim", "acts_on": "fine layers", "layer_group": "fine", "seed": 500,
        "truncation_psi": 0.7,
    }  # fmt: skip
    assert provenance["recipe"] == {"look": look_params, "pose": None, "format": "1:1", "variant": 1}
    assert (provenance["noise_mode"], provenance["noise_seed"]) == ("seeded", 1)
    assert provenance["truncation_psi"] == persona.truncation_psi and provenance["seed"] == persona.seed
    assert provenance["truncation_centre"] == persona.model.truncation_centre
    assert {"engine_version", "device", "dtype", "batch_size", "rendered_latent_sha256"} <= provenance.keys()
    assert item.job.asset.identity_consistency is not None


def test_it_renders_batch_mates_in_one_delivery_and_skips_their_own_messages(owner, brand, persona, media_root):
    campaign = submit(owner, brand, persona, formats=["1:1", "4:5"], variants=3)
    items = campaign_items(brand=brand, campaign=campaign)

    assert generation_job_run(job_id=items[0].job_id).result == "succeeded"
    assert campaign_progress(brand=brand, campaign=campaign).succeeded == 6
    assert {generation_job_run(job_id=item.job_id).result for item in items[1:]} == {"skipped"}
    jobs = GenerationJob.objects.for_brand(brand).filter(batch_key=campaign.batch_key)
    assert set(jobs.values_list("attempts", flat=True)) == {1}
    assert Asset.objects.for_brand(brand).count() == 6
    # Two formats of one recipe and variant share one forward pass: 3 distinct renders.
    assert {job.asset.metadata["provenance"]["batch_images"] for job in jobs} == {3}


def test_it_records_the_throughput_the_worker_measured_and_estimates_from_it(owner, brand, persona, media_root):
    estimate = campaign_estimate(actor=owner, brand=brand, versions=[persona.current_version], formats=["1:1"],
                                 variants=4)  # fmt: skip
    assert estimate.seconds is None and estimate.basis == [{"model": persona.model.slug, "measured": False}]

    run_all(submit(owner, brand, persona, variants=4))

    measured = WorkerThroughput.objects.get(model=persona.model)
    assert measured.images == 4 and measured.seconds > 0 and measured.batch_size == 8
    estimate = campaign_estimate(actor=owner, brand=brand, versions=[persona.current_version], formats=["1:1"],
                                 variants=4)  # fmt: skip
    assert estimate.seconds == pytest.approx(4 / measured.images_per_second, abs=0.05)
    assert estimate.basis[0]["measured_at"] == measured.measured_at.isoformat()


def test_it_returns_the_same_campaign_for_the_same_idempotency_key(owner, brand, persona):
    first = submit(owner, brand, persona, idempotency_key="spring-1", variants=2)
    again = submit(owner, brand, persona, idempotency_key="spring-1", variants=2)

    assert again.pk == first.pk
    assert GenerationJob.objects.for_brand(brand).count() == 2
    assert Campaign.objects.for_brand(brand).count() == 1


def test_it_refuses_a_campaign_over_the_monthly_quota_with_the_numbers(owner, brand, persona):
    brand.monthly_image_quota = 5
    brand.save()
    submit(owner, brand, persona, variants=3)

    with pytest.raises(ValidationError, match=r"queue 3 image\(s\), but brand Acme has used 3 of its 5 .*2 left"):
        submit(owner, brand, persona, variants=3)
    assert Campaign.objects.for_brand(brand).count() == 1
    assert GenerationJob.objects.for_brand(brand).count() == 3


def test_it_refuses_bad_matrices_and_queues_nothing(owner, brand, persona, other_persona, look, pose, outsider):
    other_look = library_item_create(
        actor=outsider, brand=other_persona.brand, model=persona.model, kind="look", name="Theirs",
        layer_group="fine", seed=3,
    )  # fmt: skip
    cases = [
        (dict(versions=[]), "at least one persona"),
        (dict(formats=[]), "at least one format"),
        (dict(formats=["2:3"]), "Unknown format '2:3'"),
        (dict(variants=0), "Variants must be"),
        (dict(versions=[other_persona.current_version]), "not one of brand acme's personas"),
        (dict(looks=[other_look]), "not in brand acme's library"),
        (dict(looks=[pose]), "Wave is a pose, not a look"),
        (dict(name=" "), "Give the campaign a name"),
    ]
    for changes, message in cases:
        arguments = dict(name="Bad", versions=[persona.current_version], formats=["1:1"], variants=1) | changes
        with pytest.raises(ValidationError, match=message):
            campaign_submit(actor=owner, brand=brand, **arguments)
    assert not Campaign.objects.unscoped().exists() and not GenerationJob.objects.unscoped().exists()


def test_it_refuses_a_look_and_pose_on_the_same_rows(owner, brand, persona, look, generator_model):
    other_look_as_pose = library_item_create(
        actor=owner, brand=brand, model=generator_model, kind="pose", name="Fine pose", layer_group="fine", seed=9
    )
    with pytest.raises(ValidationError, match="both change rows"):
        submit(owner, brand, persona, looks=[look], poses=[other_look_as_pose])


def test_it_refuses_viewers_and_outsiders(viewer, outsider, brand, persona):
    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            submit(user, brand, persona)


def test_it_cancels_queued_and_running_items_and_stores_nothing_for_them(owner, brand, persona, media_root):
    campaign = submit(owner, brand, persona, variants=3)
    first, second, third = campaign_items(brand=brand, campaign=campaign)
    generation_job_run(job_id=first.job_id)  # renders the whole batch of three
    campaign2 = submit(owner, brand, persona, name="Summer", variants=2)
    running, queued = campaign_items(brand=brand, campaign=campaign2)
    GenerationJob.objects.unscoped().filter(pk=running.job_id).update(status=Status.RUNNING, attempts=1)

    assert campaign_cancel(actor=owner, brand=brand, campaign=campaign2) == 2
    assert campaign_cancel(actor=owner, brand=brand, campaign=campaign) == 0
    progress = campaign_progress(brand=brand, campaign=campaign2)
    assert (progress.cancelled, progress.state) == (2, "cancelled")
    assert generation_job_run(job_id=queued.job_id).result == "skipped"
    assert Asset.objects.for_brand(brand).count() == 3
    with pytest.raises(ValidationError, match="already cancelled"):
        campaign_cancel(actor=owner, brand=brand, campaign=campaign2)


def test_it_stores_nothing_for_an_item_cancelled_during_its_forward_pass(owner, brand, persona, media_root):
    campaign = submit(owner, brand, persona, variants=2)
    items = campaign_items(brand=brand, campaign=campaign)
    from generation import rendering

    real = rendering.latents_render_batch

    def render_then_cancel(**kwargs):
        rendered = real(**kwargs)
        campaign_cancel(actor=owner, brand=brand, campaign=campaign)
        return rendered

    rendering.latents_render_batch = render_then_cancel
    try:
        assert generation_job_run(job_id=items[0].job_id).result == "skipped"
    finally:
        rendering.latents_render_batch = real
    assert not Asset.objects.for_brand(brand).exists()
    assert not [path for path in (media_root / "assets").rglob("*") if path.is_file()]


def test_it_retries_a_failed_item_as_a_new_job(owner, brand, persona, media_root):
    campaign = submit(owner, brand, persona)
    [item] = campaign_items(brand=brand, campaign=campaign)
    GenerationJob.objects.unscoped().filter(pk=item.job_id).update(status=Status.FAILED, error="boom")

    retried = campaign_item_retry(actor=owner, brand=brand, item=item)
    assert retried.job_id != item.job_id and retried.job.status == Status.QUEUED
    assert generation_job_run(job_id=retried.job_id).result == "succeeded"
    with pytest.raises(ValidationError, match="Only a failed item"):
        campaign_item_retry(actor=owner, brand=brand, item=retried)


def test_it_fails_an_item_visibly_when_storage_fails_and_keeps_no_file(owner, brand, persona, media_root, settings):
    campaign = submit(owner, brand, persona)
    [item] = campaign_items(brand=brand, campaign=campaign)
    media_root.mkdir(parents=True, exist_ok=True)
    # The brand's asset folder cannot be created: a file stands where it should be.
    (media_root / "assets").mkdir()
    (media_root / "assets" / brand.slug).write_text("not a folder")

    assert generation_job_run(job_id=item.job_id).result == "failed"
    item.job.refresh_from_db()
    assert item.job.status == Status.FAILED and item.job.error.startswith("Storing the image failed")
    assert not Asset.objects.for_brand(brand).exists()


def test_it_renders_each_variant_with_its_own_noise(owner, brand, media_root, tmp_path):
    # The placeholder's noise strengths are 0 (as initialised); this one's are not.
    G = random_generator(PLACEHOLDER_CONFIG, seed=1)
    with torch.no_grad():
        for module in G.synthesis.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.fill_(0.5)
    save_generator(G, str(tmp_path / "noisy"))
    model = generator_model_register(
        actor=None, name="Noisy", slug="noisy", directory=str(tmp_path / "noisy"), licence_note="test"
    )
    persona = persona_create_from_seed(actor=owner, brand=brand, model=model, seed=3, name="Noisy", handle="noisy")
    campaign = submit(owner, brand, persona, variants=3)
    run_all(campaign)
    again = submit(owner, brand, persona, name="Again", variants=3)
    run_all(again)

    def pixels(campaign):
        return [
            np.asarray(Image.open(default_storage.open(item.job.asset.image.name)))
            for item in campaign_items(brand=brand, campaign=campaign)
        ]

    first, second = pixels(campaign), pixels(again)
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    # The same variant is the same image every time: its noise comes from its seed.
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_it_numbers_variants_from_the_first_variant_asked_for(owner, brand, persona):
    campaign = submit(owner, brand, persona, variants=2, first_variant=5)
    items = CampaignItem.objects.for_brand(brand).filter(campaign=campaign)
    assert sorted(items.values_list("variant", flat=True)) == [5, 6]
    assert sorted(item.job.noise_seed for item in items) == [5, 6]
    with pytest.raises(ValidationError, match="first variant"):
        submit(owner, brand, persona, first_variant=-1)
