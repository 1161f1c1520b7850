from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptd.adapters.fast_weights import (
    BACKENDS,
    adapt,
    cross_entropy,
    grad_and_loss,
    mse,
    row_losses,
    task_loss,
)
from adaptd.adapters.network import PolicyNet, init_params


def _problem(seed: int, shots: int = 12, in_dim: int = 5, hidden: tuple[int, ...] = (16, 16)):
    g = torch.Generator().manual_seed(seed)
    net = PolicyNet(in_dim, hidden)
    x = torch.randn(shots, in_dim, generator=g)
    y = 0.8 * x[:, 0] - 0.3 + 0.1 * torch.randn(shots, generator=g)
    return net, init_params(net, seed=seed), x, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptation_lowers_the_support_loss(backend: str) -> None:
    net, params, x, y = _problem(0)
    result = adapt(net, params, x, y, steps=5, lr=0.1, backend=backend)
    assert result.steps == 5
    assert not result.deadline_hit
    assert len(result.losses) == 6
    assert result.losses[0] == pytest.approx(float(mse(net, params, x, y)), rel=1e-6)
    assert result.losses[-1] == pytest.approx(float(mse(net, result.params, x, y)), rel=1e-6)
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))
    assert result.seconds > 0


def test_one_step_is_plain_gradient_descent() -> None:
    net, params, x, y = _problem(1)
    grads, loss = grad_and_loss(net, params, x, y)
    result = adapt(net, params, x, y, steps=1, lr=0.05)
    for name, value in params.items():
        torch.testing.assert_close(result.params[name], value - 0.05 * grads[name])
    assert result.losses[0] == pytest.approx(float(loss))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shots=st.integers(1, 20),
    steps=st.integers(0, 6),
    lr=st.floats(0.001, 0.2),
)
def test_backends_agree(seed: int, shots: int, steps: int, lr: float) -> None:
    net, params, x, y = _problem(seed, shots=shots)
    a = adapt(net, params, x, y, steps=steps, lr=lr, backend="autograd")
    f = adapt(net, params, x, y, steps=steps, lr=lr, backend="func")
    assert a.steps == f.steps == steps
    for name in params:
        torch.testing.assert_close(a.params[name], f.params[name], atol=1e-6, rtol=0)
    assert a.losses == pytest.approx(f.losses, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_shot_works(backend: str) -> None:
    net, params, x, y = _problem(2, shots=1)
    result = adapt(net, params, x, y, steps=3, lr=0.1, backend=backend)
    assert result.steps == 3
    assert result.losses[-1] < result.losses[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_neither_the_net_nor_the_given_params_change(backend: str) -> None:
    net, params, x, y = _problem(3)
    net_before = {k: v.clone() for k, v in net.state_dict().items()}
    params_before = {k: v.clone() for k, v in params.items()}
    result = adapt(net, params, x, y, steps=4, lr=0.1, backend=backend)
    for name, value in net.state_dict().items():
        assert torch.equal(value, net_before[name])
    for name, value in params.items():
        assert torch.equal(value, params_before[name])
        assert not result.params[name].requires_grad
        assert not torch.equal(result.params[name], value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_spent_deadline_returns_the_initial_params(backend: str) -> None:
    net, params, x, y = _problem(4)
    result = adapt(net, params, x, y, steps=5, lr=0.1, deadline_s=0.0, backend=backend)
    assert result.steps == 0
    assert result.deadline_hit
    assert len(result.losses) == 1
    for name, value in params.items():
        assert torch.equal(result.params[name], value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_deadline_stops_the_loop_early(backend: str) -> None:
    net, params, x, y = _problem(5)
    requested = 200_000  # minutes of work if the deadline were ignored
    result = adapt(net, params, x, y, steps=requested, lr=0.01, deadline_s=0.002, backend=backend)
    assert result.deadline_hit
    assert result.steps < requested
    assert len(result.losses) == result.steps + 1


def test_generous_deadline_is_not_hit() -> None:
    net, params, x, y = _problem(6)
    result = adapt(net, params, x, y, steps=3, lr=0.1, deadline_s=60.0)
    assert (result.steps, result.deadline_hit) == (3, False)


def test_zero_steps_is_not_a_deadline_hit() -> None:
    net, params, x, y = _problem(6)
    result = adapt(net, params, x, y, steps=0, lr=0.1, deadline_s=60.0)
    assert (result.steps, result.deadline_hit, len(result.losses)) == (0, False, 1)


def test_inputs_are_cast_to_the_params_dtype() -> None:
    net, params, x, y = _problem(7)
    low = adapt(net, params, x, y, steps=2, lr=0.1)
    high = adapt(net, params, x.double(), y.double(), steps=2, lr=0.1)
    for name in params:
        assert high.params[name].dtype == torch.float32
        torch.testing.assert_close(low.params[name], high.params[name])


def test_second_order_path_stays_differentiable_and_backends_agree() -> None:
    net, params, x, y = _problem(8)
    qx, qy = x[:4] + 0.5, y[:4]
    meta_grads = {}
    for backend in BACKENDS:
        theta = {k: v.clone().requires_grad_() for k, v in params.items()}
        result = adapt(net, theta, x, y, steps=3, lr=0.1, backend=backend, create_graph=True)
        assert all(v.requires_grad for v in result.params.values())
        query_loss = mse(net, result.params, qx, qy)
        meta_grads[backend] = torch.autograd.grad(query_loss, tuple(theta.values()))
    for a, f in zip(meta_grads["autograd"], meta_grads["func"], strict=True):
        torch.testing.assert_close(a, f, atol=1e-6, rtol=1e-5)
    # Second order differs from first order (the Jacobian of the inner loop is not identity).
    first = adapt(net, params, x, y, steps=3, lr=0.1)
    fo, _ = grad_and_loss(net, first.params, qx, qy)
    assert not torch.allclose(fo["layers.0.weight"], meta_grads["autograd"][0], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"steps": -1}, "steps"),
        ({"steps": 2.0}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"deadline_s": -1.0}, "deadline_s"),
        ({"backend": "jax"}, "jax"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict, named: str) -> None:
    net, params, x, y = _problem(9)
    call = {"steps": 1, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=named):
        adapt(net, params, x, y, **call)


def test_shapes_are_checked() -> None:
    net, params, x, y = _problem(10)
    with pytest.raises(ValueError, match=r"x must have shape \(n >= 1, 5\)"):
        adapt(net, params, x[:, :3], y, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="y must have shape"):
        adapt(net, params, x, y[:-1], steps=1, lr=0.1)
    with pytest.raises(ValueError, match="x must have shape"):
        adapt(net, params, x[:0], y[:0], steps=1, lr=0.1)
    with pytest.raises(ValueError, match="backend"):
        grad_and_loss(net, params, x, y, backend="jax")  # type: ignore[arg-type]


def _classification(seed: int, shots: int = 9):
    g = torch.Generator().manual_seed(seed)
    net = PolicyNet(4, (8,), out_dim=3)
    y = torch.arange(shots) % 3
    x = torch.randn(shots, 4, generator=g) + 2.0 * torch.nn.functional.one_hot(y, 4)
    return net, init_params(net, seed=seed), x, y


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_adaptation(backend: str) -> None:
    net, params, x, y = _classification(0)
    result = adapt(net, params, x, y, steps=5, lr=0.5, loss="cross_entropy", backend=backend)
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))
    expected = torch.nn.functional.cross_entropy(torch.func.functional_call(net, params, (x,)), y)
    assert result.losses[0] == pytest.approx(float(expected), rel=1e-6)
    assert result.losses[0] == pytest.approx(float(cross_entropy(net, params, x, y)), rel=1e-6)
    floats = adapt(net, params, x, y.double(), steps=5, lr=0.5, loss="cross_entropy")
    assert floats.losses == pytest.approx(result.losses, rel=1e-5)


def test_losses_must_fit_the_net() -> None:
    net, params, x, y = _classification(1)
    with pytest.raises(ValueError, match="'mse' needs a net with out_dim=1"):
        adapt(net, params, x, y.float(), steps=1, lr=0.1)
    with pytest.raises(ValueError, match=r"class ids 0\.\.2"):
        adapt(net, params, x, y + 1, steps=1, lr=0.1, loss="cross_entropy")
    reg, reg_params, rx, ry = _problem(1)
    with pytest.raises(ValueError, match="out_dim >= 2"):
        adapt(reg, reg_params, rx, ry, steps=1, lr=0.1, loss="cross_entropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        adapt(reg, reg_params, rx, ry, steps=1, lr=0.1, loss="hinge")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_parameter_step_sizes_and_a_subset_of_names(backend: str) -> None:
    net, params, x, y = _problem(11, hidden=(6,))
    rates = {
        k: torch.rand(v.shape, generator=torch.Generator().manual_seed(0)) * 0.1
        for k, v in params.items()
    }
    head = ("layers.2.weight", "layers.2.bias")
    result = adapt(net, params, x, y, steps=1, lr=rates, names=head, backend=backend)
    grads, _ = grad_and_loss(net, params, x, y)
    for name, value in params.items():
        expected = value - rates[name] * grads[name] if name in head else value
        torch.testing.assert_close(result.params[name], expected)
    with pytest.raises(ValueError, match=r"lr has no step size for \['layers.2.bias'\]"):
        adapt(net, params, x, y, steps=1, lr={"layers.2.weight": torch.ones(1)}, names=head)
    with pytest.raises(ValueError, match="names holds unknown"):
        adapt(net, params, x, y, steps=1, lr=0.1, names=("head.weight",))


def test_explicit_and_functional_call_losses_agree() -> None:
    net, params, x, y = _problem(12)
    with torch.no_grad():
        fast = task_loss(net, params, x, y)
        generic = task_loss(net, params, x, y, backend="func")
    torch.testing.assert_close(fast, generic)
    torch.testing.assert_close(fast, mse(net, params, x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_qlike_adaptation_learns_a_variance_level(backend: str) -> None:
    # Realised-variance ratios twice what the reference expects: the forecast's log ratio
    # moves from about 0 toward log 2.
    g = torch.Generator().manual_seed(4)
    net = PolicyNet(3, (8,), output_scale=0.1)
    params = init_params(net, seed=4)
    x = torch.randn(16, 3, generator=g)
    # Chi-squared with 5 degrees of freedom, from the test's own generator (not the global
    # RNG, which earlier tests move by different amounts).
    y = 2.0 * (torch.randn(16, 5, generator=g) ** 2).sum(1) / 5.0
    result = adapt(net, params, x, y, steps=20, lr=0.2, loss="qlike", backend=backend)
    start = task_loss(net, params, x, y, "qlike")
    assert result.losses[0] == pytest.approx(float(start), rel=1e-6)
    assert result.losses[-1] < 0.5 * result.losses[0]
    z = torch.func.functional_call(net, result.params, (x,))
    assert float(z.mean()) == pytest.approx(float(torch.log(y.mean())), abs=0.25)


def test_qlike_rows_are_the_shifted_patton_loss() -> None:
    z, y = torch.tensor([0.0, math.log(2.0), 1.0]), torch.tensor([1.0, 2.0, 0.5])
    want = [
        yi * math.exp(-zi) + zi - math.log(yi) - 1
        for zi, yi in zip(z.tolist(), y.tolist(), strict=True)
    ]
    assert row_losses(z, y, "qlike").tolist() == pytest.approx(want, abs=1e-7)
    # Outputs beyond the bound are clamped: finite, whatever a diverging step gave.
    assert torch.isfinite(row_losses(torch.tensor([-1e4, 1e4]), torch.ones(2), "qlike")).all()


def test_qlike_needs_positive_targets_and_one_output() -> None:
    net, params, x, y = _problem(2)
    with pytest.raises(ValueError, match="positive"):
        adapt(net, params, x, y, steps=1, lr=0.1, loss="qlike")  # y holds negatives
    clf, clf_params, cx, _ = _classification(1)
    with pytest.raises(ValueError, match="'qlike' needs a net with out_dim=1"):
        adapt(clf, clf_params, cx, torch.ones(len(cx)), steps=1, lr=0.1, loss="qlike")


@pytest.mark.parametrize("backend", BACKENDS)
def test_keep_best_returns_the_iterate_with_the_least_support_loss(backend: str) -> None:
    # A step size far too large for QLIKE: plain descent ends orders of magnitude above its
    # start, and the loop that keeps its best iterate returns one no worse than the start.
    g = torch.Generator().manual_seed(5)
    net = PolicyNet(3, (8,), output_scale=0.1)
    params = init_params(net, seed=5)
    x = 3.0 * torch.randn(24, 3, generator=g)
    y = torch.randn(24, generator=g) ** 2 + 1e-3  # chi-squared, one degree of freedom
    last = adapt(net, params, x, y, steps=12, lr=5.0, loss="qlike", backend=backend)
    best = adapt(net, params, x, y, steps=12, lr=5.0, loss="qlike", backend=backend, keep_best=True)
    assert last.kept is None and last.loss == last.losses[-1]
    assert last.losses[-1] > 10 * last.losses[0]  # the step size overshoots: it diverges
    assert best.losses == pytest.approx(last.losses, rel=1e-5)  # the same trajectory
    assert best.kept is not None and best.loss == min(best.losses)
    assert best.loss == pytest.approx(float(task_loss(net, best.params, x, y, "qlike")), rel=1e-5)
    assert best.steps == 12 and best.loss <= best.losses[0]


def test_keep_best_keeps_the_last_iterate_of_a_descent() -> None:
    net, params, x, y = _problem(0)
    plain = adapt(net, params, x, y, steps=5, lr=0.1)
    best = adapt(net, params, x, y, steps=5, lr=0.1, keep_best=True)
    assert best.kept == 5 and best.loss == best.losses[-1]
    for name, value in plain.params.items():
        torch.testing.assert_close(best.params[name], value)


def test_keep_best_with_no_step_returns_the_start() -> None:
    net, params, x, y = _problem(2)
    result = adapt(net, params, x, y, steps=0, lr=0.1, keep_best=True)
    assert result.kept == 0 and result.params.keys() == params.keys()
    for name, value in params.items():
        torch.testing.assert_close(result.params[name], value)


def test_keep_best_is_first_order_only() -> None:
    net, params, x, y = _problem(3)
    with pytest.raises(ValueError, match="keep_best needs create_graph=False"):
        adapt(net, params, x, y, steps=1, lr=0.1, create_graph=True, keep_best=True)
