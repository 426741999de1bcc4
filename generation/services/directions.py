"""Directions of a model: computed for every brand after registration, or
taught by one brand from seeds it labelled and offered to it alone."""

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require
from generation.models import Direction, GeneratorModel
from generation.selectors import directions_for_brand

LABELLED_EXAMPLES_MIN = 3
# Each labelled seed costs a mapping pass; more than this per side adds
# seconds of CPU to one request without making the boundary better.
LABELLED_EXAMPLES_MAX = 64


def direction_usable_check(*, direction, model, brand):
    """Refuse a direction that is not `brand`'s to use on `model`: another
    brand's taught direction, or a direction of another model."""
    if direction.brand_id not in (None, brand.pk):
        raise ValidationError({"direction": "No such direction: it was taught by another brand."})
    if direction.model_id != model.pk:
        raise ValidationError(
            {"direction": f"Direction {direction.name} belongs to model {direction.model.slug}, not {model.slug}."}
        )


def directions_compute(*, model_id):
    """Compute and store the model's unsupervised (and, for a conditional
    model, class-supervised) directions. Idempotent: directions already stored
    under a name are kept, so library items that use them stay valid."""
    from generation.rendering import directions_compute_for

    model = GeneratorModel.objects.filter(pk=model_id).first()
    if model is None:
        return 0
    found = directions_compute_for(model=model)
    with transaction.atomic():
        existing = set(Direction.objects.model_wide().filter(model=model).values_list("name", flat=True))
        new = [
            Direction(model=model, **{**d, "vector": np.ascontiguousarray(d["vector"], dtype="<f4").tobytes()})
            for d in found
            if d["name"] not in existing
        ]
        Direction.objects.bulk_create(new)
        audit_record(
            actor=None,
            brand=None,
            action="generator_model.directions_computed",
            target=model,
            after={"created": len(new), "kept": len(existing)},
        )
    return len(new)


def direction_teach(*, actor, brand, model, name, layer_group, positive_seeds, negative_seeds, class_index=None):
    """A brand's own direction, fitted (InterFaceGAN-style) on personas it labelled:
    seeds that show a trait against seeds that do not. Offered to that brand only.

    The boundary is fitted before the transaction opens, so no lock is held
    while the engine maps the seeds."""
    from generation.rendering import direction_from_labelled_seeds

    _direction_teach_check(
        actor=actor, brand=brand, model=model, name=name, layer_group=layer_group,
        positive_seeds=positive_seeds, negative_seeds=negative_seeds,
    )  # fmt: skip
    try:
        fitted = direction_from_labelled_seeds(
            model=model, positive_seeds=positive_seeds, negative_seeds=negative_seeds, class_index=class_index
        )
    except ValueError as exc:
        raise ValidationError({"class_index": str(exc)}) from exc
    with transaction.atomic():
        # Checked again inside the transaction: another request may have taken the name meanwhile.
        _direction_teach_check(
            actor=actor, brand=brand, model=model, name=name, layer_group=layer_group,
            positive_seeds=positive_seeds, negative_seeds=negative_seeds,
        )  # fmt: skip
        direction = Direction.objects.create(
            model=model,
            brand=brand,
            name=name,
            layer_group=layer_group,
            kind=fitted["kind"],
            vector=np.ascontiguousarray(fitted["vector"], dtype="<f4").tobytes(),
            strength_min=fitted["strength_min"],
            strength_max=fitted["strength_max"],
        )
        audit_record(
            actor=actor,
            brand=brand,
            action="direction.taught",
            target=direction,
            after={"model": model.slug, "name": name, "layer_group": layer_group,
                   "positive_seeds": sorted(set(positive_seeds)), "negative_seeds": sorted(set(negative_seeds))},
        )  # fmt: skip
    return direction


def _direction_teach_check(*, actor, brand, model, name, layer_group, positive_seeds, negative_seeds):
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    errors = {}
    if layer_group not in {g["name"] for g in model.layer_groups}:
        errors["layer_group"] = f"Model {model.slug} has no layer group {layer_group!r}."
    for field, seeds in (("positive_seeds", positive_seeds), ("negative_seeds", negative_seeds)):
        if len(set(seeds)) < LABELLED_EXAMPLES_MIN:
            errors[field] = f"Label at least {LABELLED_EXAMPLES_MIN} different seeds on each side."
        elif len(seeds) > LABELLED_EXAMPLES_MAX:
            errors[field] = f"Label at most {LABELLED_EXAMPLES_MAX} seeds on each side, got {len(seeds)}."
    if set(positive_seeds) & set(negative_seeds):
        errors["negative_seeds"] = "A seed cannot be labelled both ways."
    if directions_for_brand(brand=brand, model=model).filter(name=name).exists():
        errors["name"] = f"Model {model.slug} already has a direction named {name!r}."
    if errors:
        raise ValidationError(errors)
