"""FOMAML's meta-gradient and Adam step against a hand computation on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, mse
from adaptd.adapters.meta import FOMAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task


def _reference(learner: FOMAML, tasks: list[Task], linear_reference):
    """(meta-gradient of w, of b, mean query loss after adaptation), in float64 numpy."""
    w0 = learner.params["layers.0.weight"].double().numpy()
    b0 = learner.params["layers.0.bias"].double().numpy()
    grads_at, descend = linear_reference
    gws, gbs, losses = [], [], []
    for t in tasks:
        sx, sy = t.support_x.double().numpy(), t.support_y.double().numpy()
        qx, qy = t.query_x.double().numpy(), t.query_y.double().numpy()
        w, b = descend(w0, b0, sx, sy, learner.inner_steps, learner.inner_lr)
        gw, gb = grads_at(w, b, qx, qy)  # first order: query gradient at the adapted weights
        gws.append(gw)
        gbs.append(gb)
        losses.append(np.mean((qx @ w[0] + b[0] - qy) ** 2))
    return np.mean(gws, axis=0), np.mean(gbs, axis=0), float(np.mean(losses))


def test_meta_gradient_leaves_params_and_reports_the_adapted_query_loss(
    linear_tasks, linear_reference
) -> None:
    # The gradient itself is checked against a closed form in test_meta_conformance.py.
    learner = FOMAML(PolicyNet(3, hidden=()), inner_steps=3, inner_lr=0.1, seed=2)
    tasks = linear_tasks([(1, 2), (5, 3), (3, 1)])
    _, _, after = _reference(learner, tasks, linear_reference)
    before_params = {k: v.clone() for k, v in learner.params.items()}
    _, stats = learner.meta_gradient(tasks)
    assert stats.query_loss_after == pytest.approx(after, rel=1e-5)
    for name, value in learner.params.items():
        assert torch.equal(value, before_params[name])


def test_meta_update_is_one_adam_step_on_the_meta_gradient(linear_tasks, linear_reference) -> None:
    learner = FOMAML(PolicyNet(3, hidden=()), inner_steps=2, inner_lr=0.1, meta_lr=0.01, seed=4)
    tasks = linear_tasks([(4, 4)] * 2)
    for _ in range(3):  # a few steps, so the moment estimates matter
        gw, gb, _ = _reference(learner, tasks, linear_reference)
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
def test_reported_losses_are_on_the_unseen_query_set(backend: str, linear_tasks) -> None:
    net = PolicyNet(3, hidden=(8,))
    learner = FOMAML(net, inner_steps=4, inner_lr=0.1, backend=backend, seed=1)
    tasks = linear_tasks([(5, 4)] * 4, seed=3)
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
