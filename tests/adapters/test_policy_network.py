from __future__ import annotations

import pytest
import torch

from adaptd.adapters.network import ACTIVATIONS, PolicyNet, forward, init_params
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


def test_out_dim_gives_unsqueezed_logits() -> None:
    net = PolicyNet(in_dim=3, hidden=(4,), out_dim=5)
    assert net(torch.randn(7, 3)).shape == (7, 5)
    assert net(torch.randn(3)).shape == (5,)
    assert dict((n, tuple(p.shape)) for n, p in net.named_parameters())["layers.2.weight"] == (5, 4)
    assert PolicyNet(in_dim=3, hidden=(4,), out_dim=1)(torch.randn(7, 3)).shape == (7,)


def test_batch_norm_names_and_initialisation() -> None:
    net = PolicyNet(in_dim=3, hidden=(4, 6), norm="batch")
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes == {
        "layers.0.weight": (4, 3),  # no bias: the normalisation would remove it
        "layers.1.weight": (4,),
        "layers.1.bias": (4,),
        "layers.3.weight": (6, 4),
        "layers.4.weight": (6,),
        "layers.4.bias": (6,),
        "layers.6.weight": (1, 6),
        "layers.6.bias": (1,),
    }
    params = init_params(net, seed=0)
    assert torch.equal(params["layers.1.weight"], torch.ones(4))
    assert torch.equal(params["layers.4.bias"], torch.zeros(6))
    assert net.head == "layers.6"


def test_meta_batch_norm_uses_the_statistics_of_the_batch_passed() -> None:
    net = PolicyNet(in_dim=2, hidden=(3,), norm="batch")
    params = init_params(net, seed=1)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    hidden = torch.nn.functional.linear(x, params["layers.0.weight"])
    normalised = torch.nn.functional.batch_norm(hidden, None, None, training=True)
    torch.testing.assert_close(normalised.mean(0), torch.zeros(3), atol=1e-6, rtol=0)
    expected = torch.tanh(normalised) @ params["layers.3.weight"].T + params["layers.3.bias"]
    torch.testing.assert_close(forward(net, params, x), expected.squeeze(-1))
    # No running statistics: the same rows in another batch give another output.
    other = forward(net, params, torch.cat((x, 5 + x)))[:8]
    assert not torch.allclose(other, forward(net, params, x))
    assert dict(net.named_buffers()) == {}


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_explicit_forward_equals_the_module_one_task_and_stacked(norm: str, out_dim: int) -> None:
    net = PolicyNet(in_dim=3, hidden=(5, 4), out_dim=out_dim, norm=norm)
    g = torch.Generator().manual_seed(2)
    per_task = [init_params(net, seed=s) for s in range(3)]
    xs = torch.randn(3, 6, 3, generator=g)
    mask = torch.ones(3, 6)
    mask[1, 4:] = 0.0  # task 1 has 4 real rows and 2 padding rows
    stacked = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
    out = forward(net, stacked, xs, mask)
    for i, params in enumerate(per_task):
        n = 4 if i == 1 else 6
        expected = torch.func.functional_call(net, params, (xs[i, :n],))
        torch.testing.assert_close(forward(net, params, xs[i, :n]), expected)
        torch.testing.assert_close(out[i, :n], expected, atol=1e-6, rtol=1e-5)
        shared = forward(net, params, xs, mask)  # unstacked weights over a task stack
        torch.testing.assert_close(shared[i, :n], expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "named"), [({"out_dim": 0}, "out_dim"), ({"norm": "layer"}, "norm")]
)
def test_invalid_head_and_norm_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PolicyNet(in_dim=3, **kwargs)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_with_hidden_keeps_the_architecture_and_leaves_the_global_rng(norm: str) -> None:
    net = PolicyNet(3, (4, 4), activation="relu", output_scale=0.1, out_dim=2, norm=norm)
    state = torch.get_rng_state()
    wide = net.with_hidden((6, 5))
    assert torch.equal(state, torch.get_rng_state())
    assert wide.hidden == (6, 5) and net.hidden == (4, 4)
    assert wide.extra_repr() == net.extra_repr().replace("(4, 4)", "(6, 5)")
    assert [k for k, _ in wide.named_parameters()] == [k for k, _ in net.named_parameters()]


@pytest.mark.parametrize("hidden", [(), (4,)])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_skip_adds_the_last_inputs_to_the_outputs_on_every_path(hidden, out_dim: int) -> None:
    from adaptd.adapters.network import features, head

    net = PolicyNet(in_dim=5, hidden=hidden, out_dim=out_dim, skip=out_dim)
    plain = PolicyNet(in_dim=5, hidden=hidden, out_dim=out_dim)
    params = init_params(net, seed=1)
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    offset = x[:, -out_dim:].squeeze(-1) if out_dim == 1 else x[:, -out_dim:]
    expected = torch.func.functional_call(plain, params, (x,)) + offset
    torch.testing.assert_close(torch.func.functional_call(net, params, (x,)), expected)
    torch.testing.assert_close(forward(net, params, x), expected)
    # The head adapted alone (ANIL) sees the offset too.
    torch.testing.assert_close(head(net, params, features(net, params, x)), expected)
    stacked = {k: torch.stack([v, v]) for k, v in params.items()}
    torch.testing.assert_close(forward(net, stacked, torch.stack([x, x]))[1], expected)
    # A network that outputs zero forwards the offset unchanged.
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    torch.testing.assert_close(forward(net, zero, x), offset)
    assert "skip=" in net.extra_repr() and net.with_hidden((2,)).skip == out_dim


@pytest.mark.parametrize(("in_dim", "out_dim", "skip"), [(3, 2, 1), (3, 4, 4), (3, 1, -1)])
def test_a_skip_that_is_not_the_output_width_is_refused(in_dim, out_dim, skip) -> None:
    with pytest.raises(ValueError, match="skip"):
        PolicyNet(in_dim=in_dim, hidden=(), out_dim=out_dim, skip=skip)
