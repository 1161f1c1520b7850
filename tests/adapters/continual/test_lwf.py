"""Learning without forgetting: the distillation term against a hand-written KL with
temperature, zero (value and gradient) at the previous weights, the classes distilled in the
task-incremental setting, regression and the state round trip. That it keeps an earlier task
better than plain fine-tuning is checked in ``test_regularizers_vs_fine_tuning.py``."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual.lwf import LearningWithoutForgetting
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.network import PolicyNet, init_params


def tiny_model(out_dim: int = 4, seed: int = 0) -> ContinualModel:
    net = PolicyNet(3, (6,), out_dim=out_dim)
    loss = "cross_entropy" if out_dim > 1 else "mse"
    return ContinualModel(net, init_params(net, seed=seed), loss=loss)


def task_of(i: int, classes: tuple[int, ...] | None, n: int = 8) -> ContinualTask:
    g = torch.Generator().manual_seed(10 + i)
    x = torch.randn(n, 3, generator=g)
    pool = classes if classes is not None else (0, 1, 2, 3)
    y = torch.tensor([pool[j % len(pool)] for j in range(n)])
    return ContinualTask(i, x, y, x, y, classes=classes)


def hand_kl(old: torch.Tensor, new: torch.Tensor, t: float) -> float:
    """``mean_x sum_c p_old log(p_old / p_new)`` at temperature ``t``, written out."""
    p_old = torch.exp(old / t) / torch.exp(old / t).sum(-1, keepdim=True)
    p_new = torch.exp(new / t) / torch.exp(new / t).sum(-1, keepdim=True)
    return float((p_old * torch.log(p_old / p_new)).sum(-1).mean())


def moved(params: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in params.items()}


def test_first_task_has_no_penalty() -> None:
    model, task = tiny_model(), task_of(0, None)
    lwf = LearningWithoutForgetting()
    lwf.before_task(model, task)
    assert lwf.penalty(model, model.params, task.train_x, task.train_y, task) is None
    assert lwf.previous is None


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_penalty_is_the_tempered_kl_of_the_previous_outputs(temperature: float) -> None:
    model = tiny_model()
    lwf = LearningWithoutForgetting(alpha=0.7, temperature=temperature)
    lwf.after_task(model, task_of(0, None))
    task = task_of(1, None)
    lwf.before_task(model, task)
    params = moved(model.params)
    value = lwf.penalty(model, params, task.train_x, task.train_y, task)
    old, new = model.output(model.params, task.train_x), model.output(params, task.train_x)
    expected = 0.7 * temperature**2 * hand_kl(old, new, temperature)
    assert value is not None and float(value) == pytest.approx(expected, rel=1e-5)
    assert float(value) > 0


def test_zero_value_and_gradient_at_the_previous_weights() -> None:
    model = tiny_model()
    lwf = LearningWithoutForgetting(alpha=2.0)
    lwf.after_task(model, task_of(0, None))
    task = task_of(1, None)
    lwf.before_task(model, task)
    leaves = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    value = lwf.penalty(model, leaves, task.train_x, task.train_y, task)
    assert value is not None and float(value.detach()) == 0.0
    grads = torch.autograd.grad(value, list(leaves.values()))
    assert all(float(g.abs().max()) < 1e-7 for g in grads)
    away = {k: v.detach().requires_grad_() for k, v in moved(model.params).items()}
    value = lwf.penalty(model, away, task.train_x, task.train_y, task)
    assert value is not None
    grads = torch.autograd.grad(value, list(away.values()))
    assert any(float(g.abs().max()) > 1e-4 for g in grads)


def test_task_incremental_distils_only_the_earlier_tasks_classes() -> None:
    model = tiny_model()
    lwf = LearningWithoutForgetting(temperature=2.0)
    lwf.after_task(model, task_of(0, (0, 1)))
    task = task_of(1, (2, 3))
    lwf.before_task(model, task)
    assert lwf.distilled_classes == [0, 1]
    params = moved(model.params)
    value = lwf.penalty(model, params, task.train_x, task.train_y, task)
    old = model.output(model.params, task.train_x)[:, :2]
    new = model.output(params, task.train_x)[:, :2]
    assert value is not None
    assert float(value) == pytest.approx(4.0 * hand_kl(old, new, 2.0), rel=1e-5)
    # moving only the current task's output units leaves the distillation term at zero
    head = dict(model.params)
    head["layers.2.weight"] = head["layers.2.weight"].clone()
    head["layers.2.weight"][2:] += 1.0
    still = lwf.penalty(model, head, task.train_x, task.train_y, task)
    assert still is not None and float(still) == 0.0
    lwf.after_task(model, task)
    assert lwf.distilled_classes == [0, 1, 2, 3]
    lwf.after_task(model, task_of(2, None))
    assert lwf.distilled_classes is None


def test_regression_uses_the_squared_difference() -> None:
    model = tiny_model(out_dim=1)
    lwf = LearningWithoutForgetting(alpha=3.0, temperature=5.0)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    first = ContinualTask(0, x, torch.zeros(6), x, torch.zeros(6))
    lwf.after_task(model, first)
    task = first._replace(id=1)
    lwf.before_task(model, task)
    params = moved(model.params)
    expected = 3.0 * float(((model.output(params, x) - model.output(model.params, x)) ** 2).mean())
    value = lwf.penalty(model, params, x, task.train_y, task)
    assert value is not None and float(value) == pytest.approx(expected, rel=1e-5)


def test_state_round_trips() -> None:
    model = tiny_model()
    lwf = LearningWithoutForgetting(alpha=2.0)
    lwf.after_task(model, task_of(0, (0, 1)))
    task = task_of(1, (2, 3))
    lwf.before_task(model, task)
    fresh = LearningWithoutForgetting(alpha=2.0)
    fresh.load_state_dict(lwf.state_dict())
    assert fresh.distilled_classes == [0, 1] and fresh.tasks_seen == 1
    params = moved(model.params)
    a = lwf.penalty(model, params, task.train_x, task.train_y, task)
    b = fresh.penalty(model, params, task.train_x, task.train_y, task)
    assert a is not None and b is not None and float(a) == float(b)
    assert lwf.memory_bytes() == 4 * model.parameter_count()
    with pytest.raises(ValueError, match="ewc"):
        fresh.load_state_dict({"name": "ewc"})


@pytest.mark.parametrize("kwargs", [{"alpha": -1.0}, {"temperature": 0.0}, {"alpha": True}])
def test_bad_arguments_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        LearningWithoutForgetting(**kwargs)  # type: ignore[arg-type]
