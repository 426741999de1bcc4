"""Personas and their immutable chain of versions.

Every change of a persona's latent is a new PersonaVersion made by
_version_add, in the transaction of the service that asked for it, with an
audit row. _version_add locks the persona row, reads the current version
under that lock and builds the new latent from it, so concurrent changes
queue up into one linear chain (version N+1's parent is always version N).
A change made against a version the user saw (`expected_version`) is refused
with VersionConflict when the persona has moved on since. Engine work (the
mapping network) happens before the transaction, so no lock is held while
the engine runs; the row arithmetic of edits, looks and breeding is NumPy.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require, layer_groups_allowed
from generation.layer_groups import layer_groups_touched
from generation.seeds import seed_validate, truncation_psi_validate
from generation.services.directions import direction_usable_check
from generation.services.jobs import JobRequest, generation_jobs_submit

from .identity import (
    class_centres,
    identity_fingerprint_record,
    identity_guard_check,
    identity_guard_prepare,
    identity_learned_embedding,
    identity_lock,
    identity_rows_changed,
)
from .latents import latent_direction_apply, latent_relabel, latent_rows_mix, latent_to_bytes, latent_validate
from .models import LibraryItem, Persona, PersonaVersion
from .selectors import persona_reference_version

Operation = PersonaVersion.Operation


class VersionConflict(ValidationError):
    """The persona changed since the user loaded the version they changed."""

    def __init__(self, *, current):
        who = current.created_by.get_username() if current.created_by else "the system"
        when = timezone.localtime(current.created_at).strftime("%Y-%m-%d %H:%M")
        super().__init__(
            f"This persona changed since you opened it: it is now version {current.number}, by {who} at {when}. "
            "Nothing was saved; look at the new version and try again.",
            code="version_conflict",
        )
        self.current = current


def persona_create_from_seed(*, actor, brand, model, seed, name, handle, truncation_psi=0.7, class_index=None, bio=""):
    """Create a persona whose first version is the engine's W+ for `seed`
    (and `class_index`, for a conditional model)."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    seed_validate(seed)
    truncation_psi_validate(truncation_psi)
    model.class_label_validate(class_index)
    identity_guard_prepare(model)

    # Imported here, not at module level: the engine pulls in PyTorch, which
    # only the processes that actually run it should pay for.
    from generation.rendering import latent_from_seed

    latent = latent_from_seed(model=model, seed=seed, truncation_psi=truncation_psi, class_index=class_index)
    params = {"seed": seed, "truncation_psi": truncation_psi}
    if class_index is not None:
        params["class_index"] = class_index
    return persona_create(
        actor=actor,
        brand=brand,
        model=model,
        latent=latent,
        name=name,
        handle=handle,
        operation=Operation.SEED,
        params=params,
        bio=bio,
        prepared_embedding=_embedding_prepare(model=model, latent=latent),
    )


@transaction.atomic
def persona_create(
    *, actor, brand, model, latent, name, handle, operation=Operation.SEED, params=None, bio="", prepared_embedding=None
):
    """Create a persona and its first version from a ready latent (validated
    before anything is saved). Callers outside a transaction should pass
    `prepared_embedding` (_embedding_prepare) so the engine runs before it."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    params = params or {}
    persona = Persona(
        brand=brand,
        model=model,
        name=name,
        handle=handle,
        bio=bio,
        seed=params.get("seed"),
        truncation_psi=params.get("truncation_psi"),
        created_by=actor,
    )
    latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
    # Uniqueness is checked through the brand scope below: Django's generic
    # unique check queries the default manager, which refuses unscoped reads.
    persona.full_clean(exclude=["current_version"], validate_unique=False, validate_constraints=False)
    if Persona.objects.for_brand(brand).filter(handle=handle).exists():
        raise ValidationError({"handle": f"This brand already has a persona with the handle @{handle}."})
    try:
        with transaction.atomic():
            persona.save()
    except IntegrityError as exc:  # a concurrent create won the same handle
        raise ValidationError({"handle": f"This brand already has a persona with the handle @{handle}."}) from exc
    version = _version_add(
        actor=actor, persona=persona, operation=operation, params=params, latent_from=lambda _: latent,
        prepared_embedding=prepared_embedding,
    )  # fmt: skip
    audit_record(
        actor=actor,
        brand=brand,
        action="persona.created",
        target=persona,
        after={"name": name, "handle": handle, "model": model.slug, "latent_sha256": version.sha256, **params},
    )
    return persona


def _version_add(
    *, actor, persona, operation, params, latent_from, class_from=None, groups=None, expected_version=None,
    prepared_embedding=None,
):  # fmt: skip
    """Append a version to `persona` and make it current. Runs inside the
    caller's transaction.

    The persona row is locked first; then the current version is read (None
    for a new persona) and `latent_from(parent)` builds the new latent from
    it, so no concurrent change is lost. `expected_version`, when given, must
    still be the current version, or VersionConflict is raised and nothing is
    written. The layer groups the new latent actually changes (or `groups`,
    for a change counted otherwise) must be ones the actor's role may change,
    and a new identity must pass the identity guard (avatars.identity). On a
    conditional model the version records the class label its latent stands
    under (`class_from(parent)`, or the caller's params for a first version).
    `prepared_embedding`: (latent, its learned identity embedding) computed
    before the transaction, used when the new latent is that one (else the
    embedding is computed here, under the locks).
    """
    locked = Persona.objects.for_brand(persona.brand).select_for_update().filter(pk=persona.pk).first()
    parent = None
    if locked.current_version_id is not None:
        parent = (
            PersonaVersion.objects.for_brand(persona.brand)
            .select_related("created_by")
            .get(pk=locked.current_version_id)
        )
    if expected_version is not None and (parent is None or parent.pk != expected_version.pk):
        raise VersionConflict(current=parent)
    model = persona.model
    latent = latent_from(parent)
    latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
    if class_from is not None and parent is not None:
        class_index = class_from(parent)
        if class_index is not None:
            params = {**params, "class_index": class_index}
    parent_latent = None if parent is None else parent.latent_array()
    if groups is None:
        if parent is None:
            changed_rows = list(range(model.num_ws))
        else:
            changed_rows = np.flatnonzero((latent != parent_latent).any(axis=1)).tolist()
        groups = layer_groups_touched(model.layer_groups, changed_rows)
    _layer_groups_require(actor=actor, brand=persona.brand, groups=groups)
    if model.identity_learned:
        # The learned guard compares people as rendered, and any row can change that.
        identity_changed = parent_latent is None or not np.array_equal(latent, parent_latent)
    else:
        identity_changed = identity_rows_changed(latent, parent_latent, model)
    embedding = None
    if identity_changed:
        embedding = _embedding_for(model=model, latent=latent, prepared=prepared_embedding)
        identity_lock(model)
        identity_guard_check(brand=persona.brand, model=model, latent=latent, embedding=embedding)
    number = parent.number + 1 if parent else 1
    version = PersonaVersion(
        brand=persona.brand,
        persona=persona,
        number=number,
        parent=parent,
        operation=operation,
        params=params,
        created_by=actor,
    )
    version.set_latent(latent, model=persona.model)
    version.save()
    persona.current_version = version
    persona.save(update_fields=["current_version"])
    if identity_changed:
        identity_fingerprint_record(persona=persona, latent=latent, embedding=embedding)
    audit_record(
        actor=actor,
        brand=persona.brand,
        action="persona.version_created",
        target=version,
        before={"version": parent.number, "sha256": parent.sha256} if parent else None,
        after={"persona": persona.handle, "version": number, "operation": operation, "params": params,
               "sha256": version.sha256},
    )  # fmt: skip
    return version


def _embedding_for(*, model, latent, prepared):
    if prepared is not None and np.array_equal(prepared[0], latent):
        return prepared[1]
    return identity_learned_embedding(model=model, latent=latent)


def _embedding_prepare(*, model, latent):
    """(latent, its learned identity embedding) for _version_add, computed now,
    outside any transaction; None when the model has no learned measure."""
    if not model.identity_learned:
        return None
    return latent, identity_learned_embedding(model=model, latent=latent)


def _layer_groups_require(*, actor, brand, groups):
    allowed = layer_groups_allowed(user=actor, brand=brand)
    touched = sorted(groups)
    if allowed is not None and not set(touched) <= allowed:
        raise ValidationError(
            f"Layer-group permission: on brand {brand.slug}, your role may change only "
            f"{', '.join(sorted(allowed)) or 'no layer group'}; this change touches {', '.join(touched)}.",
            code="layer_group_forbidden",
        )


def persona_rollback(*, actor, brand, persona, version, expected_version=None):
    """Make a new current version equal to the old `version` (history stays)."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    _persona_of_brand(persona, brand)
    if version.persona_id != persona.pk:
        raise ValidationError({"version": f"Version {version.pk} is not a version of @{persona.handle}."})
    class_index = version.class_index
    change = PersonaChange(
        operation=Operation.ROLLBACK,
        params={"to_version": version.number, "to_sha256": version.sha256},
        apply=lambda latent, class_from: np.array(version.latent_array()),
        class_after=lambda class_from: class_index,
    )
    return _change_commit(actor=actor, persona=persona, change=change, expected_version=expected_version)


def _persona_of_brand(persona, brand):
    if persona.brand_id != brand.pk:
        raise ValidationError(f"Persona {persona.pk} does not belong to brand {brand.slug}.")


# --- creating from seeds and breeding --------------------------------------------

CANDIDATES_MAX = 16


def persona_candidates_render(*, actor, brand, model, first_seed, count, truncation_psi, class_index=None):
    """Thumbnails of `count` consecutive seeds from `first_seed`: the grid a
    marketer picks a new persona from. Rendered at once (one small batch), kept
    nowhere: picking a seed creates the persona with persona_create_from_seed.
    Returns [(seed, png_bytes)]."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if not isinstance(count, int) or not 1 <= count <= CANDIDATES_MAX:
        raise ValidationError({"count": f"A grid shows 1 to {CANDIDATES_MAX} candidates, got {count!r}."})
    seed_validate(first_seed)
    seed_validate(first_seed + count - 1)
    truncation_psi_validate(truncation_psi)
    model.class_label_validate(class_index)
    from generation.rendering import latents_from_seeds, latents_thumbnails

    seeds = list(range(first_seed, first_seed + count))
    latents = latents_from_seeds(model=model, seeds=seeds, truncation_psi=truncation_psi, class_index=class_index)
    return list(zip(seeds, latents_thumbnails(model=model, latents=latents), strict=True))


def persona_breed(*, actor, brand, base, donor, layer_groups, name, handle):
    """A new persona: `base`'s current latent with the rows of `layer_groups`
    taken from `donor`'s (both the brand's personas, of the same model)."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    for persona in (base, donor):
        _persona_of_brand(persona, brand)
    if base.model_id != donor.model_id:
        raise ValidationError(
            f"@{base.handle} ({base.model.slug}) and @{donor.handle} ({donor.model.slug}) use different models; "
            "only personas of the same model can be bred."
        )
    if not layer_groups:
        raise ValidationError({"layer_groups": "Choose at least one layer group to take from the donor."})
    rows = [row for group in layer_groups for row in base.model.layer_group_rows(group)]
    identity_guard_prepare(base.model)
    base_version, donor_version = base.current_version, donor.current_version
    latent = latent_rows_mix(latent=base_version.latent_array(), source=donor_version.latent_array(), rows=rows)
    params = {
        "base": {"persona": base.handle, "version": base_version.number, "sha256": base_version.sha256},
        "donor": {"persona": donor.handle, "version": donor_version.number, "sha256": donor_version.sha256},
        "layer_groups": list(layer_groups),
    }
    if base_version.class_index is not None:
        params["class_index"] = base_version.class_index
    return persona_create(
        actor=actor,
        brand=brand,
        model=base.model,
        latent=latent,
        name=name,
        handle=handle,
        operation=Operation.MIX,
        params=params,
        prepared_embedding=_embedding_prepare(model=base.model, latent=latent),
    )


# --- editing, looks and poses ------------------------------------------------------


def _same_class(class_index):
    return class_index


@dataclass(frozen=True)
class PersonaChange:
    """A change of a persona's latent, checked but not yet applied: the
    operation and parameters its version will record, how its latent is made
    from the current one and that one's class label (None: unconditional or
    unknown) — ([num_ws, w_dim], class) -> [num_ws, w_dim] — and the class
    label it ends under. `rows`: the W+ rows it writes (none for a relabelling
    look or pose, which moves the whole latent); `groups`: the layer groups the
    permission check counts it as changing (None: those its rows change)."""

    operation: str
    params: dict
    apply: Callable[[np.ndarray, int | None], np.ndarray]
    rows: tuple = ()
    class_after: Callable[[int | None], int | None] = _same_class
    groups: tuple | None = None


def _edit_change(*, actor, brand, persona, direction, strength):
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    _persona_of_brand(persona, brand)
    direction_usable_check(direction=direction, model=persona.model, brand=brand)
    direction.strength_validate(strength)
    rows = persona.model.layer_group_rows(direction.layer_group)
    return PersonaChange(
        rows=tuple(rows),
        operation=Operation.EDIT,
        params={"direction": direction.name, "kind": direction.kind, "layer_group": direction.layer_group,
                "strength": strength},
        apply=lambda latent, class_index: latent_direction_apply(
            latent=latent, direction=direction.vector_array(), strength=strength, rows=rows
        ),
    )  # fmt: skip


def persona_edit(*, actor, brand, persona, direction, strength, expected_version=None):
    """A new version moved `strength` along `direction` on the direction's layer group."""
    change = _edit_change(actor=actor, brand=brand, persona=persona, direction=direction, strength=strength)
    return _change_commit(actor=actor, persona=persona, change=change, expected_version=expected_version)


def _change_commit(*, actor, persona, change, expected_version):
    """The new version, in one transaction opened only now: a model's identity
    guard is made ready first, so the engine never runs under its locks."""
    identity_guard_prepare(persona.model)
    prepared = None
    if persona.model.identity_learned:
        current = persona.current_version
        prepared = _embedding_prepare(
            model=persona.model, latent=change.apply(current.latent_array(), current.class_index)
        )
    with transaction.atomic():
        return _version_add(
            actor=actor,
            persona=persona,
            operation=change.operation,
            params=change.params,
            latent_from=lambda parent: change.apply(parent.latent_array(), parent.class_index),
            class_from=lambda parent: change.class_after(parent.class_index),
            groups=change.groups,
            expected_version=expected_version,
            prepared_embedding=prepared,
        )


# The class attribute a look changes on a conditional model, and the one a pose changes.
LABEL_ATTRIBUTE = {LibraryItem.Kind.LOOK: "outfit", LibraryItem.Kind.POSE: "gesture"}


def library_item_create(
    *,
    actor,
    brand,
    model,
    kind,
    name,
    layer_group="",
    source_version=None,
    seed=None,
    truncation_psi=0.7,
    class_index=None,
    direction=None,
    strength=None,
    value=None,
):
    """A look or pose for the brand's personas of `model`.

    On a model whose classes have attributes (the bundled default: outfit ×
    gesture), a look or pose is a label: `value` is the outfit (a look) or the
    gesture (a pose) it gives a persona, which keeps its person (see
    library_change). Otherwise it acts on `layer_group` (never the model's
    identity group), with exactly one source: a persona version, a seed (with a
    class label for conditional models), or a direction with a strength. A seed
    is mapped before the transaction opens, so no lock is held meanwhile."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if kind not in LibraryItem.Kind.values:
        raise ValidationError({"kind": f"Kind must be one of {', '.join(LibraryItem.Kind.values)}, got {kind!r}."})
    if value is not None:
        item = _label_item(actor=actor, brand=brand, model=model, kind=kind, name=name, value=value)
        return _library_item_save(actor=actor, brand=brand, item=item)
    if model.class_attributes and LABEL_ATTRIBUTE[kind] in model.class_attributes[0]:
        attribute = LABEL_ATTRIBUTE[kind]
        raise ValidationError(
            {"value": f"On model {model.slug} a {kind} is a {attribute}: choose one of "
                      f"{', '.join(model.attribute_values(attribute))}."}
        )  # fmt: skip
    model.layer_group_rows(layer_group)
    if layer_group == model.identity_group:
        raise ValidationError(
            {"layer_group": f"{layer_group!r} is model {model.slug}'s identity group; looks and poses never change it."}
        )
    sources = [source_version is not None, seed is not None, direction is not None]
    if sources.count(True) != 1:
        raise ValidationError("Give exactly one source: a persona version, a seed, or a direction with a strength.")
    item = LibraryItem(brand=brand, model=model, kind=kind, name=name, layer_group=layer_group, created_by=actor)
    if direction is not None:
        direction_usable_check(direction=direction, model=model, brand=brand)
        if direction.layer_group != layer_group:
            raise ValidationError(
                {"direction": f"Direction {direction.name} acts on {direction.layer_group!r}, not {layer_group!r}."}
            )
        if strength is None:
            raise ValidationError({"strength": "A direction needs a strength."})
        direction.strength_validate(strength)
        item.direction, item.strength = direction, strength
        item.recipe = {"direction": direction.name, "strength": strength}
    elif source_version is not None:
        if source_version.brand_id != brand.pk or source_version.persona.model_id != model.pk:
            raise ValidationError(
                {"source_version": "The source must be a version of one of this brand's personas of the same model."}
            )
        item.source_latent = latent_to_bytes(source_version.latent_array())
        item.recipe = {
            "persona": source_version.persona.handle,
            "version": source_version.number,
            "sha256": source_version.sha256,
        }
    else:
        seed_validate(seed)
        truncation_psi_validate(truncation_psi)
        model.class_label_validate(class_index)
        from generation.rendering import latent_from_seed

        latent = latent_from_seed(model=model, seed=seed, truncation_psi=truncation_psi, class_index=class_index)
        latent_validate(latent, num_ws=model.num_ws, w_dim=model.w_dim, model_name=model.slug)
        item.source_latent = latent_to_bytes(latent)
        item.recipe = {"seed": seed, "truncation_psi": truncation_psi}
        if class_index is not None:
            item.recipe["class"] = model.class_names[class_index]
    return _library_item_save(actor=actor, brand=brand, item=item)


def _label_item(*, actor, brand, model, kind, name, value):
    attribute = LABEL_ATTRIBUTE[kind]
    values = model.attribute_values(attribute)
    if not values:
        raise ValidationError(
            {"value": f"Model {model.slug} has no {attribute} label; make this {kind} from layers instead."}
        )
    if value not in values:
        raise ValidationError(
            {"value": f"{value!r} is not one of model {model.slug}'s {attribute} labels: {', '.join(values)}."}
        )
    return LibraryItem(
        brand=brand, model=model, kind=kind, name=name, attribute=attribute, value=value, created_by=actor,
        recipe={"attribute": attribute, "value": value},
    )  # fmt: skip


def _library_item_save(*, actor, brand, item):
    item.full_clean(exclude=["source_latent", "direction"], validate_unique=False, validate_constraints=False)
    with transaction.atomic():
        if LibraryItem.objects.for_brand(brand).filter(kind=item.kind, name=item.name).exists():
            raise ValidationError({"name": f"This brand already has a {item.kind} named {item.name!r}."})
        item.save()
        audit_record(
            actor=actor, brand=brand, action="library_item.created", target=item,
            after={"kind": item.kind, "name": item.name, "model": item.model.slug, "layer_group": item.layer_group,
                   **item.recipe},
        )  # fmt: skip
    return item


def library_change(*, actor, brand, persona, item):
    """The change `item` (a look or pose) makes to `persona`, checked (the actor
    may create, the item is the brand's, for the persona's model, and leaves its
    identity rows alone) but applied to nothing: a PersonaChange whose `rows`
    says which W+ rows it writes."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    _persona_of_brand(persona, brand)
    if item.brand_id != brand.pk:
        raise ValidationError({"item": f"{item.name} is not in brand {brand.slug}'s library."})
    if item.model_id != persona.model_id:
        raise ValidationError(
            {"item": f"{item.name} is for model {item.model.slug}; @{persona.handle} uses {persona.model.slug}."}
        )
    params = {"item": item.pk, "name": item.name, "layer_group": item.layer_group, **item.recipe}
    if item.is_label:
        return _label_change(persona=persona, item=item, params=params)
    rows = persona.model.layer_group_rows(item.layer_group)
    if set(rows) & set(persona.model.identity_rows):
        raise ValidationError(
            {"item": f"{item.name} would change the identity group {persona.model.identity_group!r}."}
        )

    def apply(latent, class_index):
        if item.direction_id is not None:
            return latent_direction_apply(
                latent=latent, direction=item.direction.vector_array(), strength=item.strength, rows=rows
            )
        return latent_rows_mix(latent=latent, source=item.source_array(), rows=rows)

    return PersonaChange(operation=item.kind, params=params, apply=apply, rows=tuple(rows))


def _label_change(*, persona, item, params):
    """A look or pose on a conditional model: the persona relabelled to the class
    with the item's attribute, every other attribute and its person kept
    (generation.stylegan.relabel; the shift between two class centres, which
    the model stores). It counts as changing the model's non-identity groups:
    what looks and poses may change."""
    model = persona.model
    centres = class_centres(model)

    def class_after(class_index):
        if class_index is None:
            raise ValidationError(
                {"item": f"@{persona.handle}'s current outfit and gesture are not recorded, so {item.name} cannot be "
                         "applied; make a new persona from a seed."}
            )  # fmt: skip
        target = model.class_with(class_index, item.attribute, item.value)
        if target is None:
            raise ValidationError({"item": f"Model {model.slug} has no class that combines {item.acts_on} with "
                                           f"@{persona.handle}'s other attributes."})  # fmt: skip
        return target

    def apply(latent, class_index):
        return latent_relabel(latent=latent, centres=centres, from_class=class_index, to_class=class_after(class_index))

    groups = tuple(g["name"] for g in model.layer_groups if g["name"] != model.identity_group)
    return PersonaChange(operation=item.kind, params=params, apply=apply, class_after=class_after, groups=groups)


def persona_library_apply(*, actor, brand, persona, item, expected_version=None):
    """A new version with `item` (a look or pose) applied to its layer group
    only: every other row, the identity group's included, stays bit-identical."""
    change = library_change(actor=actor, brand=brand, persona=persona, item=item)
    return _change_commit(actor=actor, persona=persona, change=change, expected_version=expected_version)


def persona_edit_preview(*, actor, brand, persona, direction, strength):
    """PNG bytes of (the current version, the current version edited along
    `direction`): what persona_edit would make, rendered at once and kept nowhere."""
    change = _edit_change(actor=actor, brand=brand, persona=persona, direction=direction, strength=strength)
    return _change_preview(persona=persona, change=change)


def persona_library_preview(*, actor, brand, persona, item):
    """PNG bytes of (the current version, the current version with the look or
    pose `item` applied): what persona_library_apply would make, kept nowhere."""
    change = library_change(actor=actor, brand=brand, persona=persona, item=item)
    return _change_preview(persona=persona, change=change)


def _change_preview(*, persona, change):
    from generation.rendering import latents_thumbnails

    current = persona.current_version.latent_array()
    changed = change.apply(current, persona.current_version.class_index)
    latent_validate(changed, num_ws=persona.model.num_ws, w_dim=persona.model.w_dim, model_name=persona.model.slug)
    before, after = latents_thumbnails(model=persona.model, latents=np.stack([current, changed]))
    return before, after


# --- rendering -------------------------------------------------------------------


def persona_render_submit(*, actor, brand, persona, version=None):
    """Queue a render of one of the brand's personas, pinned to `version`
    (default: the current one), its identity scored against the persona's
    first version."""
    _persona_of_brand(persona, brand)
    version = version or persona.current_version
    reference = persona_reference_version(brand=brand, persona=persona)
    [job] = generation_jobs_submit(
        actor=actor,
        brand=brand,
        requests=[
            JobRequest(
                persona=persona,
                version=version,
                reference_version=reference,
                provenance=persona_provenance(persona=persona, version=version, reference=reference),
            )
        ],
    )
    return job


def persona_provenance(*, persona, version, reference):
    """What an asset's provenance says of the persona and version it shows."""
    return {
        "persona": persona.handle,
        "version": version.number,
        "operation": version.operation,
        "latent_sha256": version.sha256,
        "seed": persona.seed,
        "truncation_psi": persona.truncation_psi,
        "identity_reference_version": reference.number,
    }


# --- renaming, archiving, deleting ------------------------------------------------
#
# Who may: owners and creators rename, archive and unarchive a persona (archiving
# loses nothing and is undone with one click); only owners delete one, and only
# when nothing depends on it. An archived persona keeps its versions, images and
# identity (other brands still cannot take its face); it is hidden from the gallery
# by default and is never rendered nor put into a new campaign (the check is
# generation.services.jobs._job_request_check, where every render is queued, and
# campaigns.services.campaign_plan). The handle stays: provenance and captions name it.

# Review states (approvals.models.ReviewState) of an image that is on its way out or
# already out: a persona with such an image is archived, never deleted.
PERSONA_IN_USE_STATES = ("in_review", "approved", "scheduled", "published")


class PersonaInUse(ValidationError):
    """The persona is still used (images in review or out, campaigns, schedules)."""

    def __init__(self, message):
        super().__init__(message, code="persona_in_use")


def _persona_for_change(*, brand, persona):
    """The brand's persona row, locked for the rest of the caller's transaction."""
    _persona_of_brand(persona, brand)
    return Persona.objects.for_brand(brand).select_for_update().get(pk=persona.pk)


def persona_rename(*, actor, brand, persona, name):
    """Give the persona another display name (its @handle stays)."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError({"name": "A persona needs a name."})
    if len(name) > Persona._meta.get_field("name").max_length:
        raise ValidationError({"name": f"A name has at most {Persona._meta.get_field('name').max_length} characters."})
    with transaction.atomic():
        locked = _persona_for_change(brand=brand, persona=persona)
        before = locked.name
        if before == name:
            return locked
        locked.name = name
        locked.save(update_fields=["name"])
        audit_record(
            actor=actor, brand=brand, action="persona.renamed", target=locked,
            before={"name": before}, after={"name": name, "handle": locked.handle},
        )  # fmt: skip
    return locked


def persona_archive(*, actor, brand, persona):
    """Archive the persona: hidden from the gallery by default, never rendered nor
    put into a new campaign; renders already queued finish. Archiving an archived
    persona changes nothing."""
    return _persona_archived_set(actor=actor, brand=brand, persona=persona, archived=True)


def persona_unarchive(*, actor, brand, persona):
    """Bring an archived persona back: shown, rendered and used in campaigns again."""
    return _persona_archived_set(actor=actor, brand=brand, persona=persona, archived=False)


def _persona_archived_set(*, actor, brand, persona, archived):
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    with transaction.atomic():
        locked = _persona_for_change(brand=brand, persona=persona)
        if locked.archived == archived:
            return locked
        before = locked.archived_at
        locked.archived_at = timezone.now() if archived else None
        locked.save(update_fields=["archived_at"])
        audit_record(
            actor=actor, brand=brand, action="persona.archived" if archived else "persona.unarchived", target=locked,
            before={"archived_at": before.isoformat() if before else None},
            after={"handle": locked.handle,
                   "archived_at": locked.archived_at.isoformat() if locked.archived_at else None},
        )  # fmt: skip
    return locked


def persona_delete_blockers(*, brand, persona):
    """What keeps the persona from being deleted, in words ([] when nothing does):
    images in review, approved, scheduled or published, campaigns and publishing
    schedules that use it."""
    from content.models import Asset
    from generation.models import GenerationJob

    blockers = []
    images = Asset.objects.for_brand(brand).filter(persona=persona, review__state__in=PERSONA_IN_USE_STATES).count()
    if images:
        blockers.append(f"{images} image{'s' if images != 1 else ''} in review, approved, scheduled or published")
    campaigns = sorted(
        set(
            GenerationJob.objects.for_brand(brand)
            .filter(persona=persona, campaign_item__isnull=False)
            .values_list("campaign_item__campaign__name", flat=True)
        )
    )
    if campaigns:
        blockers.append(f"campaign{'s' if len(campaigns) != 1 else ''} {_listed(campaigns)}")
    schedules = sorted(persona.publishing_schedules.for_brand(brand).values_list("name", flat=True))
    if schedules:
        blockers.append(f"schedule{'s' if len(schedules) != 1 else ''} {_listed(schedules)}")
    return blockers


def _listed(names, shown=3):
    quoted = [f"“{name}”" for name in names[:shown]]
    more = len(names) - shown
    return ", ".join(quoted) + (f" and {more} more" if more > 0 else "")


def persona_delete(*, actor, brand, persona):
    """Delete the persona with its versions, renders and their files (removed from
    storage once the deletion has committed). Owners only. Refused (PersonaInUse,
    nothing changed) while anything uses it (persona_delete_blockers): archive it
    instead. The audit log keeps what was deleted."""
    from django.core.files.storage import default_storage
    from django.db.models import ProtectedError

    from brands.models import Role
    from content.models import Asset

    brand_role_require(user=actor, brand=brand, roles={Role.OWNER})
    with transaction.atomic():
        locked = _persona_for_change(brand=brand, persona=persona)
        refusal = (
            f"@{locked.handle} cannot be deleted: it is used by {{}}. Archive it instead: it is hidden and never "
            "rendered, and nothing is lost."
        )
        blockers = persona_delete_blockers(brand=brand, persona=locked)
        if blockers:
            raise PersonaInUse(refusal.format("; ".join(blockers)))
        assets = Asset.objects.for_brand(brand).filter(persona=locked)
        names = [
            name
            for asset in assets
            for name in (asset.image.name, asset.web.name, asset.thumbnail.name, asset.released_image.name,
                         asset.released_web.name, asset.released_thumbnail.name)
            if name
        ]  # fmt: skip
        audit_record(
            actor=actor, brand=brand, action="persona.deleted", target=locked,
            before={"name": locked.name, "handle": locked.handle, "model": locked.model.slug,
                    "versions": PersonaVersion.objects.for_brand(brand).filter(persona=locked).count(),
                    "images": len(assets), "archived": locked.archived},
        )  # fmt: skip
        try:
            with transaction.atomic():
                locked.delete()
        except ProtectedError as exc:  # e.g. a post that was cancelled still names one of its images
            raise PersonaInUse(refusal.format("posts or other records that keep its images")) from exc

        def files_delete():
            for name in names:
                try:
                    default_storage.delete(name)
                except Exception:  # noqa: BLE001 - best effort, as content.services removes files
                    pass

        transaction.on_commit(files_delete)
