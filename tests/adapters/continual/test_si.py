"""Synaptic intelligence: the path integral on a known quadratic (exact discrete sum, and its
continuous limit, the per-parameter loss decrease), the damping, accumulation over tasks, the
removal of the penalty's own gradient and the state round trip. That it keeps an earlier task
better than plain fine-tuning is checked in ``test_regularizers_vs_fine_tuning.py``."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.si import SynapticIntelligence
from adaptd.adapters.network import PolicyNet, init_params

Params = dict[str, torch.Tensor]


def tiny_model() -> ContinualModel:
    net = PolicyNet(3, (4,), out_dim=2)
    return ContinualModel(net, init_params(net, seed=0))


def dummy_task(i: int = 0) -> ContinualTask:
    x = torch.zeros(2, 3)
    return ContinualTask(
        i, x, torch.zeros(2, dtype=torch.long), x, torch.zeros(2, dtype=torch.long)
    )


def quadratic(model: ContinualModel, seed: int) -> tuple[Params, Params]:
    """Curvatures ``h`` and minimum ``target`` of ``L = 1/2 sum h (theta - target)^2``."""
    g = torch.Generator().manual_seed(seed)
    h = {k: torch.rand(v.shape, generator=g) + 0.5 for k, v in model.params.items()}
    target = {k: v + torch.randn(v.shape, generator=g) for k, v in model.params.items()}
    return h, target


def descend(
    si: SynapticIntelligence,
    model: ContinualModel,
    h: Params,
    target: Params,
    *,
    lr: float,
    steps: int,
    task: ContinualTask,
) -> Params:
    """Gradient descent on the quadratic through the strategy's hooks; returns the path
    integral computed by hand."""
    path = {k: torch.zeros_like(v) for k, v in model.params.items()}
    si.before_task(model, task)
    for _ in range(steps):
        old = model.params
        grads = {k: h[k] * (old[k] - target[k]) for k in old}
        new = {k: old[k] - lr * grads[k] for k in old}
        model.params = new
        si.after_step(model, old, new, grads, task)
        for k in path:
            path[k] = path[k] - grads[k] * (new[k] - old[k])
    si.after_task(model, task)
    return path


def test_path_integral_matches_the_hand_computed_sum() -> None:
    model = tiny_model()
    start = dict(model.params)
    h, target = quadratic(model, 0)
    si = SynapticIntelligence(c=1.0, xi=0.01)
    path = descend(si, model, h, target, lr=0.3, steps=7, task=dummy_task())
    omega = si.importance
    assert omega is not None and si.anchor is not None
    for k in start:
        delta = model.params[k] - start[k]
        expected = (path[k] / (delta**2 + 0.01)).clamp(min=0)
        torch.testing.assert_close(omega[k], expected)
        torch.testing.assert_close(si.anchor[k], model.params[k])
        assert bool((path[k] > 0).all())  # descent on a quadratic only lowers the loss


def test_small_steps_integrate_each_parameters_loss_decrease() -> None:
    model = tiny_model()
    start = dict(model.params)
    h, target = quadratic(model, 1)
    si = SynapticIntelligence(xi=1e-12)
    descend(si, model, h, target, lr=1e-3, steps=1500, task=dummy_task())
    omega = si.importance
    assert omega is not None
    for k in start:
        drop = 0.5 * h[k] * ((start[k] - target[k]) ** 2 - (model.params[k] - target[k]) ** 2)
        delta = model.params[k] - start[k]
        torch.testing.assert_close(omega[k], drop / delta**2, rtol=2e-3, atol=1e-6)


def test_importance_accumulates_and_ignores_the_penalty_gradient() -> None:
    model = tiny_model()
    si = SynapticIntelligence(c=5.0, xi=0.1)
    h0, t0 = quadratic(model, 2)
    descend(si, model, h0, t0, lr=0.2, steps=5, task=dummy_task(0))
    first = si.importance
    anchor = si.anchor
    assert first is not None and anchor is not None
    h1, t1 = quadratic(model, 3)
    start = dict(model.params)
    si.before_task(model, dummy_task(1))
    path = {k: torch.zeros_like(v) for k, v in start.items()}
    for _ in range(4):
        old = model.params
        task_grads = {k: h1[k] * (old[k] - t1[k]) for k in old}
        # the loop hands over the gradient of task loss + penalty
        grads = {k: task_grads[k] + 2 * 5.0 * first[k] * (old[k] - anchor[k]) for k in old}
        new = {k: old[k] - 0.05 * grads[k] for k in old}
        model.params = new
        si.after_step(model, old, new, grads, dummy_task(1))
        for k in path:
            path[k] = path[k] - task_grads[k] * (new[k] - old[k])
    si.after_task(model, dummy_task(1))
    omega = si.importance
    assert omega is not None and si.tasks_seen == 2
    for k in start:
        delta = model.params[k] - start[k]
        expected = (first[k] + path[k] / (delta**2 + 0.1)).clamp(min=0)
        torch.testing.assert_close(omega[k], expected)


def test_penalty_value_and_state_round_trip() -> None:
    model = tiny_model()
    si = SynapticIntelligence(c=2.0)
    task = dummy_task()
    assert si.penalty(model, model.params, task.train_x, task.train_y, task) is None
    h, target = quadratic(model, 4)
    descend(si, model, h, target, lr=0.2, steps=3, task=task)
    omega = si.importance
    assert omega is not None
    params = {k: v + 0.3 for k, v in model.params.items()}
    expected = 2.0 * sum(float((omega[k] * 0.09).sum()) for k in omega)
    value = si.penalty(model, params, task.train_x, task.train_y, task)
    assert value is not None and float(value) == pytest.approx(expected, rel=1e-5)
    at_anchor = si.penalty(model, model.params, task.train_x, task.train_y, task)
    assert at_anchor is not None and float(at_anchor) == 0.0
    fresh = SynapticIntelligence(c=2.0)
    fresh.load_state_dict(si.state_dict())
    again = fresh.penalty(model, params, task.train_x, task.train_y, task)
    assert again is not None and float(again) == float(value)
    assert fresh.tasks_seen == 1
    with pytest.raises(ValueError, match="mas"):
        fresh.load_state_dict({"name": "mas"})


@pytest.mark.parametrize("kwargs", [{"c": -1.0}, {"xi": 0.0}, {"c": "big"}])
def test_bad_arguments_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        SynapticIntelligence(**kwargs)  # type: ignore[arg-type]
