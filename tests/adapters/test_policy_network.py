from __future__ import annotations

import pytest
import torch

from adaptd.adapters.network import ACTIVATIONS, PolicyNet, init_params
from adaptd.adapters.serving import NUMPY_ACTIVATIONS


def test_parameter_names_are_the_documented_wire_names() -> None:
    net = PolicyNet(in_dim=10, hidden=(32, 16))
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes == {
        "layers.0.weight": (32, 10),
        "layers.0.bias": (32,),
        "layers.2.weight": (16, 32),
        "layers.2.bias": (16,),
        "layers.4.weight": (1, 16),
        "layers.4.bias": (1,),
    }


def test_linear_model_without_hidden_layers() -> None:
    net = PolicyNet(in_dim=3, hidden=())
    assert [name for name, _ in net.named_parameters()] == ["layers.0.weight", "layers.0.bias"]
    x = torch.randn(5, 3)
    expected = x @ net.layers[0].weight.T.squeeze(-1) + net.layers[0].bias
    torch.testing.assert_close(net(x), expected)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_maps_rows_to_scalars(activation: str) -> None:
    net = PolicyNet(in_dim=6, hidden=(8, 8), activation=activation)
    assert net(torch.randn(7, 6)).shape == (7,)
    assert net(torch.randn(6)).shape == ()
    assert (net.in_dim, net.hidden, net.activation) == (6, (8, 8), activation)


def test_init_params_is_seeded_detached_and_leaves_the_net_alone() -> None:
    net = PolicyNet(in_dim=5, hidden=(4, 4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(123)
    a = init_params(net, seed=3)
    torch.manual_seed(456)  # the global RNG must not matter
    b = init_params(net, seed=3)
    c = init_params(net, seed=4)
    assert list(a) == [name for name, _ in net.named_parameters()]
    for name in a:
        assert torch.equal(a[name], b[name])
        assert not a[name].requires_grad
        assert a[name].shape == net.get_parameter(name).shape
    assert not torch.equal(a["layers.0.weight"], c["layers.0.weight"])
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name])


def test_init_params_uses_the_linear_default_bounds() -> None:
    net = PolicyNet(in_dim=16, hidden=(64,))
    params = init_params(net, seed=0)
    assert params["layers.0.weight"].abs().max() <= 1 / 16**0.5
    assert params["layers.2.weight"].abs().max() <= 1 / 64**0.5
    # Not degenerate: spread over most of the range.
    assert params["layers.0.weight"].abs().max() > 0.8 / 16**0.5


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"in_dim": 0}, "in_dim"),
        ({"in_dim": 2.5}, "in_dim"),
        ({"in_dim": 3, "hidden": (8, 0)}, "hidden"),
        ({"in_dim": 3, "activation": "sigmoid"}, "sigmoid"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PolicyNet(**kwargs)


def test_torch_and_numpy_know_the_same_activations() -> None:
    assert set(ACTIVATIONS) == set(NUMPY_ACTIVATIONS)


def test_output_scale_starts_a_fresh_net_near_zero_and_keeps_it_trainable() -> None:
    x = torch.randn(256, 6, generator=torch.Generator().manual_seed(0))
    spreads = {}
    for scale in (1.0, 0.1):
        net = PolicyNet(in_dim=6, hidden=(16, 16), output_scale=scale)
        params = init_params(net, seed=0)
        last = f"layers.{len(net.layers) - 1}"
        if scale < 1.0:
            assert torch.count_nonzero(params[f"{last}.bias"]) == 0
        prediction = torch.func.functional_call(net, params, (x,))
        spreads[scale] = float(prediction.abs().mean())
        # Gradients still reach the first layer.
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss = torch.func.functional_call(net, leaves, (x,)).sub(x[:, 0]).pow(2).mean()
        grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))
        assert float(grads["layers.0.weight"].abs().max()) > 0.0
        assert net.output_scale == scale
    assert spreads[0.1] < 0.25 * spreads[1.0]
    # The same seed draws the same hidden layers: only the output layer is scaled.
    a = init_params(PolicyNet(in_dim=6, hidden=(16, 16), output_scale=0.1), seed=0)
    b = init_params(PolicyNet(in_dim=6, hidden=(16, 16), output_scale=1.0), seed=0)
    assert torch.equal(a["layers.0.weight"], b["layers.0.weight"])
    torch.testing.assert_close(a["layers.4.weight"], 0.1 * b["layers.4.weight"])


@pytest.mark.parametrize("scale", [-0.1, 1.5, float("nan")])
def test_output_scale_out_of_range_is_refused(scale: float) -> None:
    with pytest.raises(ValueError, match="output_scale must be in"):
        PolicyNet(in_dim=3, output_scale=scale)


def test_output_scale_applies_to_the_modules_own_parameters() -> None:
    torch.manual_seed(0)
    net = PolicyNet(in_dim=6, hidden=(16, 16), output_scale=0.1)
    assert torch.count_nonzero(net.layers[-1].bias) == 0
