"""FOMAML's meta-gradient and Adam step against a hand computation on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, mse
from adaptd.adapters.meta import FOMAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task


def _np_grads(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray):
    r = x @ w[0] + b[0] - y
    return (2.0 / len(y)) * (r @ x)[None, :], (2.0 / len(y)) * np.array([r.sum()])


def _np_adapt(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int, lr: float):
    for _ in range(steps):
        gw, gb = _np_grads(w, b, x, y)
        w, b = w - lr * gw, b - lr * gb
    return w, b


def _tasks(sizes: list[tuple[int, int]], seed: int = 0) -> list[Task]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, (n_support, n_query) in enumerate(sizes):
        x = torch.randn(n_support + n_query, 3, generator=g)
        y = (1.0 - i) * x[:, 1] + 0.3 * x[:, 0] - 0.2 * i
        out.append(Task(x[:n_support], y[:n_support], x[n_support:], y[n_support:]))
    return out


def _reference(learner: FOMAML, tasks: list[Task]):
    """(meta-gradient of w, of b, mean query loss after adaptation), in float64 numpy."""
    w0 = learner.params["layers.0.weight"].double().numpy()
    b0 = learner.params["layers.0.bias"].double().numpy()
    gws, gbs, losses = [], [], []
    for t in tasks:
        sx, sy = t.support_x.double().numpy(), t.support_y.double().numpy()
        qx, qy = t.query_x.double().numpy(), t.query_y.double().numpy()
        w, b = _np_adapt(w0, b0, sx, sy, learner.inner_steps, learner.inner_lr)
        gw, gb = _np_grads(w, b, qx, qy)  # first order: query gradient at the adapted weights
        gws.append(gw)
        gbs.append(gb)
        losses.append(np.mean((qx @ w[0] + b[0] - qy) ** 2))
    return np.mean(gws, axis=0), np.mean(gbs, axis=0), float(np.mean(losses))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes", [[(4, 3)] * 3, [(1, 2), (5, 3), (3, 1)], [(2, 2)]])
def test_meta_gradient_matches_a_hand_computation(
    backend: str, sizes: list[tuple[int, int]]
) -> None:
    learner = FOMAML(PolicyNet(3, hidden=()), inner_steps=3, inner_lr=0.1, backend=backend, seed=2)
    tasks = _tasks(sizes)
    gw, gb, after = _reference(learner, tasks)
    before_params = {k: v.clone() for k, v in learner.params.items()}
    grads, stats = learner.meta_gradient(tasks)
    np.testing.assert_allclose(grads["layers.0.weight"].numpy(), gw, atol=1e-5)
    np.testing.assert_allclose(grads["layers.0.bias"].numpy(), gb, atol=1e-5)
    assert stats.query_loss_after == pytest.approx(after, rel=1e-5)
    for name, value in learner.params.items():
        assert torch.equal(value, before_params[name])  # meta_gradient does not update


def test_meta_update_is_one_adam_step_on_the_meta_gradient() -> None:
    learner = FOMAML(PolicyNet(3, hidden=()), inner_steps=2, inner_lr=0.1, meta_lr=0.01, seed=4)
    tasks = _tasks([(4, 4)] * 2)
    for _ in range(3):  # a few steps, so the moment estimates matter
        gw, gb, _ = _reference(learner, tasks)
        theta = {k: v.double().numpy() for k, v in learner.params.items()}
        state = learner.optimizer.state_dict()
        t = state["t"] + 1
        expected = {}
        for name, g in (("layers.0.weight", gw), ("layers.0.bias", gb)):
            m = state["exp_avg"].get(name, torch.zeros(1)).double().numpy()
            v = state["exp_avg_sq"].get(name, torch.zeros(1)).double().numpy()
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            step = 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            expected[name] = theta[name] - step
        learner.meta_update(tasks)
        for name, value in expected.items():
            np.testing.assert_allclose(learner.params[name].numpy(), value, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reported_losses_are_on_the_unseen_query_set(backend: str) -> None:
    net = PolicyNet(3, hidden=(8,))
    learner = FOMAML(net, inner_steps=4, inner_lr=0.1, backend=backend, seed=1)
    tasks = _tasks([(5, 4)] * 4, seed=3)
    before = np.mean([float(mse(net, learner.params, t.query_x, t.query_y)) for t in tasks])
    after = np.mean(
        [
            float(mse(net, learner.adapt(t.support_x, t.support_y).params, t.query_x, t.query_y))
            for t in tasks
        ]
    )
    stats = learner.meta_update(tasks)
    assert (stats.tasks, learner.updates) == (4, 1)
    assert stats.query_loss_before == pytest.approx(before, rel=1e-5)
    assert stats.query_loss_after == pytest.approx(after, rel=1e-5)
