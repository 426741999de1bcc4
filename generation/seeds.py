"""Seeds and truncation: how a persona is drawn from a generator model.

A seed picks z (NumPy's RandomState, as NVIDIA's generate.py does, so seeds
mean the same faces there and here); ψ pulls w towards the model's centre.
"""

from django.core.exceptions import ValidationError

SEED_MAX = 2**32 - 1  # NumPy's RandomState takes seeds in [0, 2**32)
TRUNCATION_PSI_RANGE = (0.0, 1.0)


def seed_validate(seed):
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ValidationError({"seed": f"Seed must be an integer from 0 to {SEED_MAX}, got {seed!r}."})


def truncation_psi_validate(truncation_psi):
    low, high = TRUNCATION_PSI_RANGE
    if not low <= truncation_psi <= high:
        raise ValidationError(
            {"truncation_psi": f"Truncation psi must be within [{low}, {high}], got {truncation_psi}."}
        )
