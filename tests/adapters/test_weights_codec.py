from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adaptd.adapters.codec import params_from_bytes, params_to_bytes, sha256_hex
from adaptd.adapters.network import PolicyNet, init_params

finite_float32 = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
    elements=st.floats(-1e6, 1e6, width=32),
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,5}(\.[0-9])?", fullmatch=True), finite_float32))
def test_round_trip_is_exact_and_bytes_are_deterministic(params: dict[str, np.ndarray]) -> None:
    data = params_to_bytes(params)
    decoded = params_from_bytes(data)
    assert list(decoded) == sorted(params)
    for name, value in params.items():
        assert decoded[name].dtype == np.float32
        np.testing.assert_array_equal(decoded[name], value)
    assert params_to_bytes(dict(reversed(list(params.items())))) == data
    assert params_to_bytes(decoded) == data


def test_tensors_and_arrays_of_equal_weights_give_equal_bytes_and_hash() -> None:
    params = init_params(PolicyNet(4, (8,)), seed=0)
    as_numpy = {k: v.numpy().copy() for k, v in params.items()}
    with_grad = {k: v.clone().requires_grad_() for k, v in params.items()}
    data = params_to_bytes(params)
    assert params_to_bytes(as_numpy) == data
    assert params_to_bytes(with_grad) == data
    assert sha256_hex(params_to_bytes(as_numpy)) == sha256_hex(data)
    as_numpy["layers.0.bias"][0] += 1e-6
    assert sha256_hex(params_to_bytes(as_numpy)) != sha256_hex(data)


def test_other_dtypes_are_stored_as_float32() -> None:
    decoded = params_from_bytes(params_to_bytes({"w": np.array([0.1, 2.0]), "n": np.arange(3)}))
    assert decoded["w"].dtype == decoded["n"].dtype == np.float32
    np.testing.assert_array_equal(decoded["w"], np.float32([0.1, 2.0]))
    from_double = params_to_bytes({"w": torch.tensor([0.1, 2.0], dtype=torch.float64)})
    assert from_double == params_to_bytes({"w": np.float32([0.1, 2.0])})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"layers\.0\.bias has non-finite"):
        params_to_bytes({"layers.0.bias": np.array([0.0, bad])})


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="not numeric"):
        params_to_bytes({"w": np.array(["a"])})
    with pytest.raises(ValueError, match="names must be strings"):
        params_to_bytes({1: np.zeros(2)})
    with pytest.raises(ValueError, match="not safetensors"):
        params_from_bytes(b"definitely not safetensors")


def test_non_float32_payload_is_refused() -> None:
    from safetensors.numpy import save

    with pytest.raises(ValueError, match="expected float32"):
        params_from_bytes(save({"w": np.zeros(2, dtype=np.float64)}))


def test_sha256_hex_is_the_standard_digest() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
