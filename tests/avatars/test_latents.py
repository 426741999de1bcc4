import numpy as np
import pytest
from django.core.exceptions import ValidationError

from avatars.latents import (
    latent_direction_apply,
    latent_from_bytes,
    latent_rows_mix,
    latent_to_bytes,
    latent_validate,
)


def valid():
    return np.random.default_rng(0).standard_normal((10, 512)).astype(np.float32)


def test_it_accepts_a_finite_float32_w_plus_array():
    latent_validate(valid(), num_ws=10, w_dim=512, model_name="m")


@pytest.mark.parametrize(
    "latent, message",
    [
        (valid()[:9], r"must have shape \[10, 512\] \(W\+\), got \[9, 512\]"),
        (valid()[None], r"got \[1, 10, 512\]"),
        (valid().T.copy(), r"got \[512, 10\]"),
        (valid().astype(np.float64), "must be float32, got float64"),
        (valid().astype(np.float16), "must be float32, got float16"),
        (valid().astype(np.int32), "must be float32, got int32"),
        (valid().tolist(), "must be a NumPy array, got list"),
    ],
    ids=["rows", "batch", "transposed", "float64", "float16", "int", "list"],
)
def test_it_refuses_wrong_shapes_and_dtypes(latent, message):
    with pytest.raises(ValidationError, match=message):
        latent_validate(latent, num_ws=10, w_dim=512, model_name="m")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_it_refuses_non_finite_values(bad):
    latent = valid()
    latent[3, 7] = bad
    with pytest.raises(ValidationError, match="has 1 NaN or infinite values"):
        latent_validate(latent, num_ws=10, w_dim=512, model_name="m")


def test_it_round_trips_through_raw_float32_bytes():
    latent = valid()
    data = latent_to_bytes(latent)
    assert len(data) == 10 * 512 * 4
    restored = latent_from_bytes(memoryview(data), num_ws=10, w_dim=512)
    assert restored.dtype == np.float32 and np.array_equal(restored, latent)
    assert not restored.flags.writeable


def test_it_refuses_stored_bytes_of_the_wrong_length():
    with pytest.raises(ValidationError, match="needs 20480"):
        latent_from_bytes(b"\0" * 100, num_ws=10, w_dim=512)


def test_it_adds_a_direction_to_the_chosen_rows_only():
    latent = np.random.RandomState(0).randn(6, 32).astype(np.float32)
    direction = np.random.RandomState(1).randn(32).astype(np.float32)
    edited = latent_direction_apply(latent=latent, direction=direction, strength=2.5, rows=[1, 2])
    assert np.array_equal(edited[[0, 3, 4, 5]], latent[[0, 3, 4, 5]])
    np.testing.assert_allclose(edited[1] - latent[1], 2.5 * direction, atol=1e-5)
    with pytest.raises(ValidationError, match="does not fit a latent of shape"):
        latent_direction_apply(latent=latent, direction=direction[:5], strength=1.0, rows=[0])
    with pytest.raises(ValidationError, match="does not fit"):
        latent_direction_apply(latent=latent, direction=direction, strength=1.0, rows=[6])


def test_it_copies_the_chosen_rows_and_keeps_the_others_bit_identical():
    latent, source = np.random.RandomState(0).randn(2, 6, 32).astype(np.float32)
    mixed = latent_rows_mix(latent=latent, source=source, rows=[0, 5])
    assert np.array_equal(mixed[[0, 5]], source[[0, 5]]) and np.array_equal(mixed[1:5], latent[1:5])
    with pytest.raises(ValidationError, match="Cannot mix"):
        latent_rows_mix(latent=latent, source=source[:5], rows=[0])
