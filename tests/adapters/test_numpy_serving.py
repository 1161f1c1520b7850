from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.adapters.codec import params_from_bytes, params_to_bytes
from adaptd.adapters.network import ACTIVATIONS, PolicyNet, init_params
from adaptd.adapters.serving import NumpyPolicy


def _numpy(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in params.items()}


@settings(max_examples=25, deadline=None)
@given(
    in_dim=st.integers(1, 12),
    hidden=st.lists(st.integers(1, 24), max_size=3).map(tuple),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    seed=st.integers(0, 2**31 - 1),
    rows=st.integers(1, 9),
)
def test_matches_policy_net(in_dim, hidden, activation, seed, rows) -> None:
    net = PolicyNet(in_dim, hidden, activation)
    params = init_params(net, seed)
    x = torch.randn(rows, in_dim, generator=torch.Generator().manual_seed(seed)) * 3
    with torch.no_grad():
        expected = torch.func.functional_call(net, params, (x,)).numpy()
    policy = NumpyPolicy.from_params(_numpy(params), activation=activation)
    assert (policy.in_dim, policy.hidden, policy.activation) == (in_dim, hidden, activation)
    got = policy.predict(x.numpy())
    assert got.shape == (rows,)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    one = policy.predict(x.numpy()[0])
    assert isinstance(one, np.ndarray)
    assert one.shape == ()
    np.testing.assert_allclose(one, expected[0], atol=1e-5, rtol=1e-5)


def test_serves_decoded_policy_bytes() -> None:
    net = PolicyNet(5, (32, 32))
    params = init_params(net, 3)
    policy = NumpyPolicy.from_params(params_from_bytes(params_to_bytes(params)))
    x = torch.randn(4, 5)
    with torch.no_grad():
        expected = torch.func.functional_call(net, params, (x,)).numpy()
    np.testing.assert_allclose(policy.predict(x.numpy()), expected, atol=1e-5)


def test_parameter_order_does_not_matter() -> None:
    params = _numpy(init_params(PolicyNet(3, (4, 4)), 0))
    shuffled = dict(reversed(list(params.items())))
    x = np.ones((2, 3))
    np.testing.assert_array_equal(
        NumpyPolicy.from_params(params).predict(x), NumpyPolicy.from_params(shuffled).predict(x)
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("layers.2.bias"), "needs both weight and bias"),
        (lambda p: p.update({"head.weight": np.ones((1, 4))}), "unexpected parameter name"),
        (
            lambda p: p.update(
                {f"layers.6.{k}": p.pop(f"layers.4.{k}") for k in ("weight", "bias")}
            ),
            "layers.0, layers.2",
        ),
        (lambda p: p.update({"layers.2.weight": np.ones((4, 5))}), "takes 5 inputs"),
        (lambda p: p.update({"layers.0.bias": np.ones(3)}), "layer 0"),
    ],
)
def test_malformed_params_are_refused(mutate, message: str) -> None:
    params = _numpy(init_params(PolicyNet(3, (4, 4)), 0))
    mutate(params)
    with pytest.raises(ValueError, match=message):
        NumpyPolicy.from_params(params)


def test_bad_inputs_are_refused() -> None:
    params = _numpy(init_params(PolicyNet(3, (4,)), 0))
    with pytest.raises(ValueError, match="activation"):
        NumpyPolicy.from_params(params, activation="sigmoid")
    with pytest.raises(ValueError, match="empty"):
        NumpyPolicy([])
    policy = NumpyPolicy.from_params(params)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        policy.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        policy.predict(np.ones((2, 2, 3)))


def test_a_batch_normalised_net_is_refused_with_the_reason() -> None:
    net = PolicyNet(3, (4,), norm="batch")
    with pytest.raises(ValueError, match=r"layers\.1 is a normalisation layer.*norm='batch'"):
        NumpyPolicy.from_params(_numpy(init_params(net, 0)))


def test_a_classifier_serves_its_logits_like_the_torch_net() -> None:
    net = PolicyNet(3, (4,), out_dim=2)
    params = init_params(net, 0)
    policy = NumpyPolicy.from_params(_numpy(params))
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        expected = torch.func.functional_call(net, params, (torch.from_numpy(x),)).numpy()
    assert policy.out_dim == 2
    assert policy.predict(x).shape == (5, 2)
    np.testing.assert_allclose(policy.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(policy.predict(x[0]), expected[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("out_dim", [1, 2])
def test_a_skip_net_serves_like_the_torch_net(out_dim: int) -> None:
    net = PolicyNet(4, (3,), out_dim=out_dim, skip=out_dim)
    params = init_params(net, 0)
    policy = NumpyPolicy.from_params(_numpy(params), skip=out_dim)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = torch.func.functional_call(net, params, (torch.from_numpy(x),)).numpy()
    np.testing.assert_allclose(policy.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(policy.predict(x[2]), expected[2], rtol=1e-5, atol=1e-6)
    assert "skip=" in repr(policy)
    with pytest.raises(ValueError, match="skip"):
        NumpyPolicy.from_params(_numpy(params), skip=out_dim + 1)
