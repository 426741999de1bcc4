"""W+ latents as stored data: a float32 array of shape [num_ws, w_dim].

Stored as raw little-endian float32 bytes plus the shape, never pickled, so a
row can be read by anything that knows the shape and cannot execute code.
"""

import hashlib

import numpy as np
from django.core.exceptions import ValidationError

STORED_DTYPE = np.dtype("<f4")


def latent_validate(latent, *, num_ws, w_dim, model_name):
    """Refuse anything but a finite float32 array of shape [num_ws, w_dim]."""
    if not isinstance(latent, np.ndarray):
        raise ValidationError(f"A latent must be a NumPy array, got {type(latent).__name__}.", code="latent_type")
    if latent.dtype.kind != "f" or latent.dtype.itemsize != 4:
        raise ValidationError(f"A latent must be float32, got {latent.dtype}.", code="latent_dtype")
    if latent.shape != (num_ws, w_dim):
        raise ValidationError(
            f"A latent for model {model_name} must have shape [{num_ws}, {w_dim}] (W+), got {list(latent.shape)}.",
            code="latent_shape",
        )
    non_finite = int(np.size(latent) - np.count_nonzero(np.isfinite(latent)))
    if non_finite:
        raise ValidationError(
            f"A latent must be finite; this one has {non_finite} NaN or infinite values.", code="latent_not_finite"
        )


def latent_to_bytes(latent):
    return np.ascontiguousarray(latent, dtype=STORED_DTYPE).tobytes()


def latent_from_bytes(data, *, num_ws, w_dim):
    """The stored array, read-only: a persona's latent changes only through services."""
    data = bytes(data)  # PostgreSQL hands BinaryField values back as memoryview
    expected = num_ws * w_dim * STORED_DTYPE.itemsize
    if len(data) != expected:
        raise ValidationError(
            f"Stored latent has {len(data)} bytes; shape [{num_ws}, {w_dim}] needs {expected}.", code="latent_bytes"
        )
    return np.frombuffer(data, dtype=STORED_DTYPE).reshape(num_ws, w_dim)


def latent_sha256(latent):
    return hashlib.sha256(latent_to_bytes(latent)).hexdigest()


def latent_direction_apply(*, latent, direction, strength, rows):
    """`latent` with strength × direction added to `rows` only.

    NumPy row arithmetic, kept out of the engine's package so that web
    processes editing personas never load PyTorch."""
    if direction.shape != (latent.shape[1],) or any(not 0 <= row < latent.shape[0] for row in rows):
        raise ValidationError(
            f"Direction of shape {list(direction.shape)} on rows {rows} does not fit a latent of shape "
            f"{list(latent.shape)}.",
            code="latent_shape",
        )
    edited = np.array(latent, dtype=np.float32, copy=True)
    edited[rows] += np.float32(strength) * direction.astype(np.float32)
    return edited


def latent_rows_mix(*, latent, source, rows):
    """`latent` with `rows` copied from `source` (same shape), every other row bit-identical."""
    if latent.shape != source.shape or any(not 0 <= row < latent.shape[0] for row in rows):
        raise ValidationError(
            f"Cannot mix rows {rows} of latents of shapes {list(latent.shape)} and {list(source.shape)}.",
            code="latent_shape",
        )
    mixed = np.array(latent, dtype=np.float32, copy=True)
    mixed[rows] = source[rows]
    return mixed


def latent_relabel(*, latent, centres, from_class, to_class):
    """`latent` of a persona under class `from_class`, moved to `to_class`: every row
    shifted by the difference of the two class centres (`centres` [c_dim, w_dim]),
    as generation.stylegan.relabel does in the engine."""
    shift = centres[to_class].astype(np.float64) - centres[from_class].astype(np.float64)
    return (np.asarray(latent, dtype=np.float64) + shift[None]).astype(np.float32)
