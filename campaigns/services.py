"""Campaigns: a brand's matrix of persona versions × looks × poses × formats ×
variants, queued as render jobs in one transaction.

An item is a recipe, never a persona change: its look and pose are applied to
the pinned version's latent (NumPy, in this process) and the job renders that
latent; the persona keeps its versions as they were.
"""

import itertools
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from avatars.latents import latent_validate
from avatars.models import LibraryItem
from avatars.selectors import persona_reference_version
from avatars.services import library_change, persona_provenance
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require
from common.events import event_emit, event_subscribe
from content.formats import FORMATS
from generation.models import GenerationJob
from generation.services.jobs import JobRequest, generation_jobs_cancel, generation_jobs_submit

from .models import Campaign, CampaignItem
from .selectors import campaign_progress, throughput_basis

MAX_IMAGES = 2000
MAX_VARIANTS = 16


@dataclass(frozen=True)
class Estimate:
    """What a campaign costs: `images` (one per item), `renders` (forward passes:
    formats of one recipe share one), and `seconds` of worker time from the
    throughput workers measured (None until a worker has measured the model)."""

    images: int
    renders: int
    seconds: float | None
    basis: list

    def as_dict(self):
        return {"images": self.images, "renders": self.renders, "seconds": self.seconds, "basis": self.basis}


@dataclass(frozen=True)
class _Recipe:
    version: object
    look: object
    pose: object
    latent: object
    params: dict


def campaign_plan(*, actor, brand, versions, looks=(), poses=(), formats, variants):
    """Check a campaign's matrix and compute each recipe's latent; writes nothing.
    Returns (recipes, formats, variants): the items are recipes × formats × variants."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    versions, looks, poses, formats = list(versions), list(looks), list(poses), list(formats)
    errors = {}
    if not versions:
        errors["versions"] = "Choose at least one persona."
    for version in versions:
        if version.brand_id != brand.pk:
            errors["versions"] = f"Version {version.pk} is not one of brand {brand.slug}'s personas."
        elif version.persona.archived_at is not None:
            errors["versions"] = f"{version.persona.name} is archived; unarchive it to use it in a campaign."
    for field, items, kind in (("looks", looks, LibraryItem.Kind.LOOK), ("poses", poses, LibraryItem.Kind.POSE)):
        for item in items:
            if item.brand_id != brand.pk:
                errors[field] = f"{item.name} is not in brand {brand.slug}'s library."
            elif item.kind != kind:
                errors[field] = f"{item.name} is a {item.kind}, not a {kind}."
    if not formats:
        errors["formats"] = "Choose at least one format."
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        errors["formats"] = f"Unknown format {unknown[0]!r}; the formats are {', '.join(FORMATS)}."
    if not isinstance(variants, int) or not 1 <= variants <= MAX_VARIANTS:
        errors["variants"] = f"Variants must be a whole number from 1 to {MAX_VARIANTS}, got {variants!r}."
    if errors:
        raise ValidationError(errors)
    images = len(versions) * max(len(looks), 1) * max(len(poses), 1) * len(formats) * variants
    if images > MAX_IMAGES:
        raise ValidationError(f"This campaign would make {images} images; one campaign makes at most {MAX_IMAGES}.")
    changes = {}  # one checked change per persona and item, whatever it is combined with
    recipes = [
        recipe_build(actor=actor, brand=brand, version=version, look=look, pose=pose, changes=changes)
        for version in versions
        for look in looks or [None]
        for pose in poses or [None]
    ]
    return recipes, sorted(set(formats), key=list(FORMATS).index), variants


def recipe_build(*, actor, brand, version, look, pose, changes=None):
    """`version` with `look` then `pose` applied (either may be None), checked.
    `changes` keeps library_change's checked changes across calls: {(persona pk, item pk): change}."""
    changes = {} if changes is None else changes
    persona = version.persona
    latent, class_index = version.latent_array(), version.class_index
    written = {}
    for item in (look, pose):
        if item is None:
            continue
        key = (persona.pk, item.pk)
        if key not in changes:
            changes[key] = library_change(actor=actor, brand=brand, persona=persona, item=item)
        change = changes[key]
        overlap = set(change.rows) & set(written)
        if overlap:
            raise ValidationError(
                f"{item.name} and {written[min(overlap)]} both change rows {sorted(overlap)} of "
                f"@{persona.handle}'s latent; choose a look and a pose on different layer groups."
            )
        written.update(dict.fromkeys(change.rows, item.name))
        latent, class_index = change.apply(latent, class_index), change.class_after(class_index)
    model = persona.model
    latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
    params = {
        "look": _item_params(look),
        "pose": _item_params(pose),
    }
    return _Recipe(version=version, look=look, pose=pose, latent=latent, params=params)


def _item_params(item):
    if item is None:
        return None
    return {"id": item.pk, "name": item.name, "acts_on": item.acts_on, "layer_group": item.layer_group, **item.recipe}


def campaign_estimate(*, actor, brand, versions, looks=(), poses=(), formats, variants):
    recipes, formats, variants = campaign_plan(
        actor=actor, brand=brand, versions=versions, looks=looks, poses=poses, formats=formats, variants=variants
    )
    return _estimate(recipes=recipes, formats=formats, variants=variants)


def _estimate(*, recipes, formats, variants):
    images_per_model = {}
    for recipe in recipes:
        model = recipe.version.persona.model
        images_per_model[model] = images_per_model.get(model, 0) + len(formats) * variants
    seconds, basis = 0.0, []
    for model, images in images_per_model.items():
        measured = throughput_basis(model=model)
        if measured is None:
            seconds = None
            basis.append({"model": model.slug, "measured": False})
            continue
        if seconds is not None:
            seconds += images / measured.images_per_second
        basis.append(
            {
                "model": model.slug,
                "measured": True,
                "worker": measured.worker,
                "device": measured.device,
                "dtype": measured.dtype,
                "batch_size": measured.batch_size,
                "images_per_second": round(measured.images_per_second, 3),
                "measured_at": measured.measured_at.isoformat(),
            }
        )
    images = sum(images_per_model.values())
    return Estimate(
        images=images,
        renders=len(recipes) * variants,
        seconds=None if seconds is None else round(seconds, 1),
        basis=basis,
    )


FIRST_VARIANT_MAX = 30000


def campaign_submit(
    *,
    actor,
    brand,
    name,
    versions,
    formats,
    looks=(),
    poses=(),
    variants=1,
    first_variant=0,
    brief="",
    idempotency_key="",
):
    """Create a campaign and queue every item's render job, all in one transaction.
    Items get variants first_variant .. first_variant + variants - 1 (variant 0 is
    the model's constant noise, n the noise drawn from seed n).

    With an `idempotency_key` already used by the brand, returns that campaign
    and queues nothing. Refused, with nothing queued, when the matrix is bad or
    would pass the brand's monthly image quota."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if idempotency_key:
        existing = Campaign.objects.for_brand(brand).filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if not name.strip():
        raise ValidationError({"name": "Give the campaign a name."})
    if not isinstance(first_variant, int) or not 0 <= first_variant <= FIRST_VARIANT_MAX:
        raise ValidationError({"first_variant": f"The first variant is a whole number from 0 to {FIRST_VARIANT_MAX}."})
    recipes, formats, variants = campaign_plan(
        actor=actor, brand=brand, versions=versions, looks=looks, poses=poses, formats=formats, variants=variants
    )
    estimate = _estimate(recipes=recipes, formats=formats, variants=variants)
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                brand=brand,
                name=name.strip(),
                brief=brief,
                matrix={
                    "versions": sorted({recipe.version.pk for recipe in recipes}),
                    "looks": [look.pk for look in looks],
                    "poses": [pose.pk for pose in poses],
                },
                formats=formats,
                variants=variants,
                first_variant=first_variant,
                idempotency_key=idempotency_key,
                estimate=estimate.as_dict(),
                created_by=actor,
            )
            _items_submit(actor=actor, brand=brand, campaign=campaign, recipes=recipes)
            audit_record(
                actor=actor,
                brand=brand,
                action="campaign.submitted",
                target=campaign,
                after={"name": campaign.name, "idempotency_key": idempotency_key, **estimate.as_dict()},
            )
    except IntegrityError:
        existing = idempotency_key and Campaign.objects.for_brand(brand).filter(idempotency_key=idempotency_key).first()
        if existing:
            # A concurrent request with the same key won; its campaign is this one.
            return existing
        raise
    return campaign


def _items_submit(*, actor, brand, campaign, recipes):
    # Formats innermost: the formats of one picture are neighbours in a batch and
    # share one forward pass.
    combinations = [
        (recipe, output_format, variant)
        for recipe, variant, output_format in itertools.product(
            recipes, range(campaign.first_variant, campaign.first_variant + campaign.variants), campaign.formats
        )
    ]
    references = {}
    requests = []
    for recipe, output_format, variant in combinations:
        persona = recipe.version.persona
        if persona.pk not in references:
            references[persona.pk] = persona_reference_version(brand=brand, persona=persona)
        reference = references[persona.pk]
        requests.append(
            JobRequest(
                persona=persona,
                version=recipe.version,
                reference_version=reference,
                provenance={
                    **persona_provenance(persona=persona, version=recipe.version, reference=reference),
                    "campaign": campaign.pk,
                    "recipe": {**recipe.params, "format": output_format, "variant": variant},
                },
                latent=recipe.latent,
                noise_seed=None if variant == 0 else variant,
                output_format=output_format,
            )
        )
    jobs = generation_jobs_submit(actor=actor, brand=brand, requests=requests, batch_key=campaign.batch_key)
    CampaignItem.objects.bulk_create(
        CampaignItem(
            brand=brand,
            campaign=campaign,
            version=recipe.version,
            look=recipe.look,
            pose=recipe.pose,
            output_format=output_format,
            variant=variant,
            job=job,
        )
        for (recipe, output_format, variant), job in zip(combinations, jobs, strict=True)
    )


def campaign_cancel(*, actor, brand, campaign):
    """Cancel the campaign's queued and running items. Running ones finish their
    forward pass and store nothing. Returns how many items were cancelled."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    _campaign_of_brand(campaign, brand)
    with transaction.atomic():
        locked = Campaign.objects.for_brand(brand).select_for_update().get(pk=campaign.pk)
        if locked.cancelled_at is not None:
            raise ValidationError(f"Campaign {campaign.name} was already cancelled at {locked.cancelled_at:%H:%M}.")
        job_ids = list(CampaignItem.objects.for_brand(brand).filter(campaign=campaign).values_list("job_id", flat=True))
        cancelled = generation_jobs_cancel(brand=brand, job_ids=job_ids)
        locked.cancelled_at = timezone.now()
        locked.save(update_fields=["cancelled_at"])
        audit_record(
            actor=actor, brand=brand, action="campaign.cancelled", target=locked, after={"items_cancelled": cancelled}
        )
    campaign.cancelled_at = locked.cancelled_at
    return cancelled


def campaign_item_retry(*, actor, brand, item):
    """Queue a failed item again as a new job (within the quota); the failed job
    stays in the history."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if item.brand_id != brand.pk:
        raise ValidationError("No such campaign item.")
    with transaction.atomic():
        item = (
            CampaignItem.objects.for_brand(brand).select_for_update().select_related("job", "campaign").get(pk=item.pk)
        )
        if item.campaign.cancelled_at is not None:
            raise ValidationError("The campaign was cancelled; its items are not retried.")
        failed = item.job
        if failed.status != GenerationJob.Status.FAILED:
            raise ValidationError(f"Only a failed item can be retried; this one is {failed.get_status_display()}.")
        [job] = generation_jobs_submit(
            actor=actor,
            brand=brand,
            requests=[
                JobRequest(
                    persona=failed.persona,
                    version=failed.version,
                    reference_version=failed.reference_version,
                    provenance=failed.provenance,
                    latent=failed.render_latent(),
                    noise_seed=failed.noise_seed,
                    output_format=failed.output_format,
                )
            ],
            batch_key=item.campaign.batch_key,
        )
        item.job = job
        item.save(update_fields=["job"])
        audit_record(
            actor=actor,
            brand=brand,
            action="campaign_item.retried",
            target=item,
            before={"job": failed.pk, "error": failed.error},
            after={"job": job.pk},
        )
    return item


def _campaign_of_brand(campaign, brand):
    if campaign.brand_id != brand.pk:
        raise ValidationError(f"Campaign {campaign.pk} does not belong to brand {brand.slug}.")


# --------------------------------------------------------------------------- completion (webhooks, #16)


def campaign_events_subscribe():
    """Hear the end of every render job (an asset stored, or the job failed)."""
    event_subscribe("asset.created", campaign_job_finished)
    event_subscribe("job.failed", campaign_job_finished)


def campaign_job_finished(event):
    if event.payload.get("job_id") is not None:
        campaign_completion_check(job_id=event.payload["job_id"])


def campaign_completion_check(*, job_id):
    """Once the last item of the job's campaign has finished (succeeded or failed;
    a cancelled campaign is not "completed"), record it and emit
    campaign.completed. Under the campaign's row lock, once per state of its
    items: the audit row (keyed by the newest job among them) says it was told,
    so two workers finishing the last items at once emit it once, and a retried
    item that finishes again emits it again. Returns the event or None."""
    item = CampaignItem.objects.unscoped().filter(job_id=job_id).select_related("brand").first()
    if item is None:
        return None
    brand = item.brand
    with transaction.atomic():
        campaign = Campaign.objects.for_brand(brand).select_for_update().get(pk=item.campaign_id)
        if campaign.cancelled_at is not None:
            return None
        progress = campaign_progress(brand=brand, campaign=campaign)
        if not progress.finished or progress.cancelled:
            return None
        last_job_id = max(
            CampaignItem.objects.for_brand(brand).filter(campaign=campaign).values_list("job_id", flat=True)
        )
        told = AuditEvent.objects.filter(
            action="campaign.completed",
            target_type=Campaign._meta.label_lower,
            target_id=str(campaign.pk),
            after__last_job_id=last_job_id,
        ).exists()
        if told:
            return None
        payload = {
            "campaign_id": campaign.pk,
            "state": progress.state,
            "total": progress.total,
            "succeeded": progress.succeeded,
            "failed": progress.failed,
        }
        audit_record(
            actor=None,
            brand=brand,
            action="campaign.completed",
            target=campaign,
            after={**payload, "last_job_id": last_job_id},
        )
        return event_emit(name="campaign.completed", brand=brand, payload=payload)
