from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.services import audit_record
from brands.models import CREATE_ROLES
from brands.selectors import brand_role_require

from .models import Persona

SEED_MAX = 2**32 - 1  # NumPy's RandomState takes seeds in [0, 2**32)
TRUNCATION_PSI_RANGE = (0.0, 1.0)


def persona_create_from_seed(*, actor, brand, model, seed, name, handle, truncation_psi=0.7):
    """Create a persona whose latent is the engine's W+ for `seed`.

    The forward pass through the mapping network runs before the transaction,
    so no database lock is held while the engine works.
    """
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    if not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValidationError({"seed": f"Seed must be an integer from 0 to {SEED_MAX}, got {seed!r}."})
    low, high = TRUNCATION_PSI_RANGE
    if not low <= truncation_psi <= high:
        raise ValidationError({"truncation_psi": f"Truncation psi must be within [{low}, {high}], got {truncation_psi}."})
    if model.c_dim:
        raise ValidationError({"model": f"Model {model.slug} is class-conditional; persona creation needs a class label."})

    # Imported here, not at module level: the engine pulls in PyTorch, which
    # only the processes that actually run it should pay for.
    from generation.rendering import latent_from_seed

    latent = latent_from_seed(model=model, seed=seed, truncation_psi=truncation_psi)
    return persona_create(
        actor=actor,
        brand=brand,
        model=model,
        latent=latent,
        name=name,
        handle=handle,
        origin={"seed": seed, "truncation_psi": truncation_psi},
    )


@transaction.atomic
def persona_create(*, actor, brand, model, latent, name, handle, origin):
    """Create a persona from a ready latent (validated before anything is saved)."""
    brand_role_require(user=actor, brand=brand, roles=CREATE_ROLES)
    persona = Persona(
        brand=brand,
        model=model,
        name=name,
        handle=handle,
        seed=origin.get("seed"),
        truncation_psi=origin.get("truncation_psi"),
        created_by=actor,
    )
    persona.set_latent(latent)
    # Uniqueness is checked through the brand scope below: Django's generic
    # unique check queries the default manager, which refuses unscoped reads.
    persona.full_clean(exclude=["latent", "latent_num_ws", "latent_w_dim", "latent_sha256"], validate_unique=False,
                       validate_constraints=False)
    if Persona.objects.for_brand(brand).filter(handle=handle).exists():
        raise ValidationError({"handle": f"This brand already has a persona with the handle @{handle}."})
    try:
        with transaction.atomic():
            persona.save()
    except IntegrityError as exc:  # a concurrent create won the same handle
        raise ValidationError({"handle": f"This brand already has a persona with the handle @{handle}."}) from exc
    audit_record(
        actor=actor,
        brand=brand,
        action="persona.created",
        target=persona,
        after={"name": name, "handle": handle, "model": model.slug, "latent_sha256": persona.latent_sha256, **origin},
    )
    return persona
