"""Reptile's update and statistics against a hand computation on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, mse, task_loss
from adaptd.adapters.meta import Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes", [[(4, 3)] * 3, [(1, 2), (5, 3), (3, 1)], [(2, 2)]])
def test_update_matches_a_hand_computation(
    backend: str, sizes: list[tuple[int, int]], linear_tasks, linear_reference
) -> None:
    _, descend = linear_reference
    net = PolicyNet(3, hidden=())
    learner = Reptile(net, inner_steps=3, inner_lr=0.1, meta_lr=0.4, backend=backend, seed=5)
    w0 = learner.params["layers.0.weight"].double().numpy()
    b0 = learner.params["layers.0.bias"].double().numpy()
    tasks = linear_tasks(sizes)
    adapted = []
    for t in tasks:
        x = torch.cat((t.support_x, t.query_x)).double().numpy()  # Reptile adapts on all data
        y = torch.cat((t.support_y, t.query_y)).double().numpy()
        adapted.append(descend(w0, b0, x, y, steps=3, lr=0.1))
    w_mean = np.mean([w for w, _ in adapted], axis=0)
    b_mean = np.mean([b for _, b in adapted], axis=0)
    learner.meta_update(tasks)
    np.testing.assert_allclose(
        learner.params["layers.0.weight"].numpy(), w0 + 0.4 * (w_mean - w0), atol=1e-5
    )
    np.testing.assert_allclose(
        learner.params["layers.0.bias"].numpy(), b0 + 0.4 * (b_mean - b0), atol=1e-5
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_reported_losses_hold_the_query_set_out(backend: str, linear_tasks) -> None:
    net = PolicyNet(3, hidden=(8,))
    learner = Reptile(net, inner_steps=4, inner_lr=0.1, backend=backend, seed=1)
    tasks = linear_tasks([(5, 4)] * 4, seed=3)
    theta = learner.params
    before = np.mean([float(mse(net, theta, t.query_x, t.query_y)) for t in tasks])
    after = np.mean(
        [
            float(mse(net, learner.adapt(t.support_x, t.support_y).params, t.query_x, t.query_y))
            for t in tasks
        ]
    )
    stats = learner.meta_update(tasks)
    assert stats.tasks == 4
    assert stats.query_loss_before == pytest.approx(before, rel=1e-5)
    assert stats.query_loss_after == pytest.approx(after, rel=1e-5)
    assert stats.seconds > 0


def test_meta_lr_one_jumps_to_the_mean_of_adapted_weights(linear_tasks) -> None:
    net = PolicyNet(3, hidden=(4,))
    learner = Reptile(net, inner_steps=2, inner_lr=0.1, meta_lr=1.0, seed=0)
    (task,) = linear_tasks([(3, 2)])
    everything = (
        torch.cat((task.support_x, task.query_x)),
        torch.cat((task.support_y, task.query_y)),
    )
    expected = Reptile(net, inner_steps=2, inner_lr=0.1, seed=0).adapt(*everything).params
    learner.meta_update([task])
    for name, value in expected.items():
        torch.testing.assert_close(learner.params[name], value, atol=1e-6, rtol=1e-5)


def test_with_keep_best_an_overshooting_step_cannot_drag_the_initialisation() -> None:
    # QLIKE tasks with a step size far too large: the last iterates run off, and Reptile
    # moves toward them; with keep_best it moves toward each task's best iterate instead.
    g = torch.Generator().manual_seed(3)
    tasks = []
    for _ in range(4):
        x = 3.0 * torch.randn(12, 3, generator=g)
        y = torch.randn(12, generator=g) ** 2 + 1e-3
        tasks.append(Task(x[:8], y[:8], x[8:], y[8:]))
    net = PolicyNet(3, (8,), output_scale=0.1)
    kwargs = {"inner_steps": 10, "inner_lr": 3.0, "meta_lr": 0.5, "seed": 0, "loss": "qlike"}
    plain, best = Reptile(net, **kwargs), Reptile(net, keep_best=True, **kwargs)
    assert not plain.keep_best and best.keep_best
    start = {k: v.clone() for k, v in best.params.items()}
    plain.meta_update(tasks)
    best.meta_update(tasks)

    def loss(params: dict[str, torch.Tensor]) -> float:
        x = torch.cat([t.support_x for t in tasks] + [t.query_x for t in tasks])
        y = torch.cat([t.support_y for t in tasks] + [t.query_y for t in tasks])
        return float(task_loss(net, params, x, y, "qlike"))

    assert all(torch.isfinite(v).all() for v in best.params.values())
    assert loss(best.params) < loss(start) * 1.5
    assert not loss(plain.params) < 10 * loss(best.params)  # ran off (or to NaN)
