"""The generator registry: importing, registering and configuring models.

Operators (staff) manage models; the shell and commands act as `actor=None`.
"""

import json
import logging
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from config.celery import app as celery_app
from generation.layer_groups import (
    DEFAULT_IDENTITY_GROUP,
    layer_group_rows,
    layer_groups_default,
    layer_groups_validate,
)
from generation.models import Direction, GeneratorModel

logger = logging.getLogger(__name__)

DIRECTIONS_TASK = "generation.compute_directions"
# A model registered this long ago without any model-wide direction is asked for
# again by the sweep: its request was lost, or the worker died computing.
DIRECTIONS_GRACE = timedelta(minutes=10)
MODEL_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}\Z")

# Two personas whose identities are closer than this fraction of the median
# distance between random personas (seeds at ψ 0.7) count as the same face.
IDENTITY_MIN_DISTANCE_FRACTION = 0.25


def operator_require(*, actor, doing):
    """PermissionDenied unless `actor` is staff (or None: the shell and commands)."""
    if actor is not None and not actor.is_staff:
        raise PermissionDenied(f"Only operators (staff) may {doing}.")


def generator_model_register(
    *, actor, name, slug, directory, licence_note, class_names=(), layer_groups=None, identity_group=None
):
    """Register a checkpoint directory (absolute, or relative to MODELS_ROOT).

    The checkpoint is loaded once before anything is saved, so a registered
    model is known to work and its sha256 pins the exact weights. Layer groups
    default to coarse / middle / fine with "middle" as the identity group.
    """
    # Imported here: the engine pulls in PyTorch (see generation/__init__.py).
    from generation.rendering import (
        ModelUnavailable,
        checkpoint_describe,
        identity_calibrate,
        identity_measure_describe,
    )

    operator_require(actor=actor, doing="register generator models")
    if GeneratorModel.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A generator model with the slug {slug!r} already exists."})
    model = GeneratorModel(name=name, slug=slug, directory=str(directory), licence_note=licence_note)
    try:
        info = checkpoint_describe(directory=model.path)
    except ModelUnavailable as exc:
        raise ValidationError({"directory": str(exc)}) from exc
    model.sha256, model.config, model.num_ws, model.w_dim = info.sha256, info.config, info.num_ws, info.w_dim
    model.truncation_centre = info.config["truncation_centre"]
    model.class_names = _class_names_validate(list(class_names), c_dim=model.c_dim)
    model.class_attributes = class_attributes_read(directory=model.path, c_dim=model.c_dim)
    model.layer_groups = layer_groups or layer_groups_default(model.num_ws)
    model.identity_group = identity_group or DEFAULT_IDENTITY_GROUP
    layer_groups_validate(model.layer_groups, num_ws=model.num_ws, identity_group=model.identity_group)
    calibration = identity_calibrate(model=model)
    model.identity_basis = calibration.basis.astype("<f4").tobytes()
    model.identity_min_distance = IDENTITY_MIN_DISTANCE_FRACTION * calibration.typical_distance
    model.identity_centres = calibration.centres.astype("<f4").tobytes()
    model.identity_centre_distance = calibration.centre_distance
    model.identity_measure = identity_measure_describe(model=model)
    model.full_clean()
    with transaction.atomic():
        model.save()
        audit_record(
            actor=actor,
            brand=None,
            action="generator_model.registered",
            target=model,
            after={
                "slug": slug,
                "directory": str(directory),
                "sha256": info.sha256,
                "layer_groups": model.layer_groups,
            },
        )
        # Directions take seconds to minutes: a worker on the default queue finds them.
        transaction.on_commit(lambda: directions_request(model_id=model.pk))
    return model


def directions_request(*, model_id):
    """Ask a worker to compute a model's directions. A broker that cannot be
    reached is logged, not raised: the model is registered all the same, and
    beat's directions sweep (generation_directions_sweep) asks again."""
    try:
        celery_app.send_task(DIRECTIONS_TASK, args=[model_id], retry=False)
    except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the sweep asks again
        logger.warning("Directions of model %s not requested yet (task queue unreachable: %s)", model_id, exc)
        return False
    return True


def generation_directions_sweep():
    """Ask again for the directions of models registered a while ago that have
    none (run by beat). Returns how many were asked for."""
    with_directions = Direction.objects.model_wide().values("model")
    missing = GeneratorModel.objects.filter(created_at__lte=timezone.now() - DIRECTIONS_GRACE).exclude(
        pk__in=with_directions
    )
    return sum(directions_request(model_id=pk) for pk in missing.values_list("pk", flat=True))


def generator_model_identity_refresh(*, actor, model):
    """Record `model`'s identity measure again (after an embedding was added to its
    folder): scores and the guard use it from then on."""
    operator_require(actor=actor, doing="configure generator models")
    from generation.rendering import identity_measure_describe

    measure = identity_measure_describe(model=model)
    with transaction.atomic():
        before = model.identity_measure
        GeneratorModel.objects.filter(pk=model.pk).update(identity_measure=measure)
        model.identity_measure = measure
        audit_record(
            actor=actor, brand=None, action="generator_model.identity_measure_changed", target=model,
            before=before, after=measure,
        )  # fmt: skip
    return model


def class_attributes_read(*, directory, c_dim):
    """The per-class attributes a checkpoint's training.json records (our training
    loop writes them), or [] when it has none that fit the model's classes."""
    try:
        attributes = json.loads((Path(directory) / "training.json").read_text()).get("class_attributes") or []
    except (OSError, ValueError, AttributeError):
        return []
    valid = (
        len(attributes) == c_dim
        and all(isinstance(a, dict) and a and all(isinstance(v, str) for v in a.values()) for a in attributes)
        and len({json.dumps(a, sort_keys=True) for a in attributes}) == c_dim
    )
    return attributes if valid else []


def _class_names_validate(class_names, *, c_dim):
    if not class_names:
        return [f"class {i}" for i in range(c_dim)]
    if len(class_names) != c_dim:
        raise ValidationError(
            {"class_names": f"The model has {c_dim} classes, but {len(class_names)} class names were given."}
        )
    if any(not isinstance(n, str) or not n.strip() for n in class_names) or len(set(class_names)) != len(class_names):
        raise ValidationError({"class_names": "Class names must be distinct, non-empty text."})
    return [n.strip() for n in class_names]


def generator_model_destination_check(*, slug):
    """MODELS_ROOT/<slug>, after checking that the slug is a plain slug (so the
    directory is a direct child of MODELS_ROOT) and that neither the slug nor
    the directory is taken."""
    if not isinstance(slug, str) or not MODEL_SLUG.match(slug):
        raise ValidationError(
            {
                "slug": f"{slug!r} is not a model slug: 1 to 60 lower-case letters, digits, - or _, "
                "starting with a letter or digit."
            }
        )
    if GeneratorModel.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A generator model with the slug {slug!r} already exists."})
    root = Path(settings.MODELS_ROOT).resolve()
    destination = (root / slug).resolve()
    if destination.parent != root:
        raise ValidationError({"slug": f"{slug!r} does not name a directory inside MODELS_ROOT."})
    if destination.exists() or destination.is_symlink():
        raise ValidationError({"slug": f"{destination} already exists; choose another slug or move it away."})
    return destination


def generator_model_import(*, actor, source, name, slug, licence_note, class_names=()):
    """Import a checkpoint into MODELS_ROOT/<slug> and register it.

    `source` is a StyleGAN2-ADA / StyleGAN3 .pkl (read by the engine's restricted
    unpickler, converted to safetensors) or one of our checkpoint directories
    (copied, regular files only). The checkpoint is written into a temporary
    directory inside MODELS_ROOT and renamed into place, so a failed import
    leaves nothing behind and nothing is ever written outside MODELS_ROOT.
    Operators only: the caller must be staff (or None for the shell).
    Unsupervised directions are computed after commit on the default queue.
    """
    from generation.rendering import ModelUnavailable, checkpoint_import

    operator_require(actor=actor, doing="import generator models")
    if not licence_note.strip():
        raise ValidationError(
            {"licence_note": "A licence note is required: where the weights come from and what they may be used for."}
        )
    destination = generator_model_destination_check(slug=slug)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=destination.parent))
    try:
        checkpoint_import(source=Path(source), directory=staging / "checkpoint")
        try:
            (staging / "checkpoint").rename(destination)
        except OSError as exc:  # another import took the directory meanwhile
            raise ValidationError({"slug": f"{destination} already exists; choose another slug."}) from exc
    except ModelUnavailable as exc:
        raise ValidationError({"source": str(exc)}) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        return generator_model_register(
            actor=actor, name=name, slug=slug, directory=slug, licence_note=licence_note, class_names=class_names
        )
    except BaseException:  # not registered, whatever the reason: the slug stays free
        shutil.rmtree(destination, ignore_errors=True)
        raise


@transaction.atomic
def generator_model_configure(
    *, actor, model, layer_groups, identity_group, class_names, licence_note, identity_min_distance
):
    """Rename or re-cut a model's layer groups, name its classes, edit its
    licence note and its identity guard distance. Operators only."""
    operator_require(actor=actor, doing="configure generator models")
    layer_groups_validate(layer_groups, num_ws=model.num_ws, identity_group=identity_group)
    new_identity_rows = layer_group_rows(layer_groups, identity_group)
    if new_identity_rows != model.identity_rows and model.personas.unscoped().exists():
        # The identity guard's fingerprints were taken on the old rows.
        raise ValidationError(
            {"identity_group": "Personas already exist on this model: its identity rows can no longer change."}
        )
    if not identity_min_distance >= 0:
        raise ValidationError({"identity_min_distance": "The identity guard distance must be 0 (off) or more."})
    before = {
        "layer_groups": model.layer_groups,
        "identity_group": model.identity_group,
        "class_names": model.class_names,
        "licence_note": model.licence_note,
        "identity_min_distance": model.identity_min_distance,
    }
    model.layer_groups, model.identity_group = layer_groups, identity_group
    model.class_names = _class_names_validate(list(class_names), c_dim=model.c_dim)
    model.class_attributes = class_attributes_read(directory=model.path, c_dim=model.c_dim)
    model.licence_note = licence_note
    model.identity_min_distance = identity_min_distance
    model.full_clean()
    model.save()
    audit_record(
        actor=actor,
        brand=None,
        action="generator_model.configured",
        target=model,
        before=before,
        after={
            "layer_groups": layer_groups,
            "identity_group": identity_group,
            "class_names": model.class_names,
            "licence_note": licence_note,
            "identity_min_distance": identity_min_distance,
        },
    )
    return model
