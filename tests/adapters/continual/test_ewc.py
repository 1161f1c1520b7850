"""EWC with per-task protection: each task's Fisher against an explicit per-example loop (also
the "true" Fisher), one penalty term per task, the ``max_tasks`` bound and the state round
trip. That it keeps an earlier task better than plain fine-tuning is checked with the other
regularizers in ``test_regularizers_vs_fine_tuning.py``."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual.ewc import EWC
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.network import PolicyNet, init_params


def tiny_model(seed: int = 0) -> ContinualModel:
    net = PolicyNet(4, (5,), out_dim=3)
    return ContinualModel(net, init_params(net, seed=seed))


def task_of(i: int, n: int = 12) -> ContinualTask:
    g = torch.Generator().manual_seed(100 + i)
    x, y = torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)
    return ContinualTask(i, x, y, x, y)


def loop_fisher(
    model: ContinualModel, x: torch.Tensor, y: torch.Tensor, *, true: bool = False
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher one example at a time: the observed label's squared score, or its
    expectation over the model's predicted classes."""
    total = {k: torch.zeros_like(v) for k, v in model.params.items()}
    for xi, yi in zip(x, y, strict=True):
        params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
        logp = torch.log_softmax(model.output(params, xi[None])[0], -1)
        labels = range(len(logp)) if true else [int(yi)]
        for c in labels:
            weight = float(logp[c].detach().exp()) if true else 1.0
            grads = torch.autograd.grad(logp[c], list(params.values()), retain_graph=True)
            for k, g in zip(params, grads, strict=True):
                total[k] += weight * g**2
    return {k: v / len(x) for k, v in total.items()}


def shifted(params: dict[str, torch.Tensor], by: float) -> dict[str, torch.Tensor]:
    return {k: v + by for k, v in params.items()}


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_each_task_keeps_its_own_fisher_and_anchor(kind: str) -> None:
    ewc = EWC(fisher=kind)  # type: ignore[arg-type]
    models = [tiny_model(seed=s) for s in (0, 1)]
    for i, model in enumerate(models):
        ewc.after_task(model, task_of(i))
    assert ewc.tasks == [0, 1]
    state = ewc.state_dict()["penalties"]
    for i, model in enumerate(models):
        task = task_of(i)
        expected = loop_fisher(model, task.train_x, task.train_y, true=kind == "true")
        for k in model.params:
            torch.testing.assert_close(state[i]["fisher"][k], expected[k], rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(state[i]["anchor"][k], model.params[k])
    importance = ewc.importance
    assert importance is not None
    for k in importance:
        torch.testing.assert_close(importance[k], state[0]["fisher"][k] + state[1]["fisher"][k])


def test_penalty_sums_one_quadratic_per_task() -> None:
    ewc = EWC(lam=4.0)
    models = [tiny_model(seed=s) for s in (0, 1)]
    for i, model in enumerate(models):
        ewc.after_task(model, task_of(i))
    params = shifted(models[1].params, 0.05)
    expected = 0.0
    for i, model in enumerate(models):
        task = task_of(i)
        fisher = loop_fisher(model, task.train_x, task.train_y)
        expected += 2.0 * sum(
            float((fisher[k] * (params[k] - model.params[k]) ** 2).sum()) for k in params
        )
    task = task_of(2)
    value = ewc.penalty(models[1], params, task.train_x, task.train_y, task)
    assert value is not None
    assert float(value) == pytest.approx(expected, rel=1e-5)
    # at the latest anchor only the earlier task's term is left, and it is positive
    at_latest = ewc.penalty(models[1], models[1].params, task.train_x, task.train_y, task)
    assert at_latest is not None and float(at_latest) > 0


def test_max_tasks_bounds_the_penalties_and_the_memory() -> None:
    bounded, unbounded = EWC(max_tasks=2), EWC()
    model = tiny_model()
    sizes = []
    for i in range(4):
        bounded.after_task(model, task_of(i))
        unbounded.after_task(model, task_of(i))
        sizes.append(bounded.memory_bytes())
    per_task = 2 * 4 * model.parameter_count()
    combined = per_task + 4  # the one quadratic the penalty evaluates: S, mu and C
    assert bounded.tasks == [2, 3]
    assert sizes == [p + combined for p in (per_task, 2 * per_task, 2 * per_task, 2 * per_task)]
    assert unbounded.memory_bytes() == 4 * per_task + combined
    assert unbounded.tasks == [0, 1, 2, 3]


def test_penalty_is_none_before_any_task_and_zero_at_the_single_anchor() -> None:
    ewc, model, task = EWC(), tiny_model(), task_of(0)
    assert ewc.penalty(model, model.params, task.train_x, task.train_y, task) is None
    assert ewc.importance is None
    ewc.after_task(model, task)
    value = ewc.penalty(model, model.params, task.train_x, task.train_y, task)
    assert value is not None and float(value) == 0.0


def test_state_round_trips_and_shapes_are_checked() -> None:
    ewc, model = EWC(max_tasks=3), tiny_model()
    for i in range(2):
        ewc.after_task(model, task_of(i))
    fresh = EWC(max_tasks=3)
    fresh.load_state_dict(ewc.state_dict())
    assert fresh.tasks == [0, 1]
    params = shifted(model.params, 0.1)
    task = task_of(2)
    a = ewc.penalty(model, params, task.train_x, task.train_y, task)
    b = fresh.penalty(model, params, task.train_x, task.train_y, task)
    assert a is not None and b is not None and float(a) == float(b)
    with pytest.raises(ValueError, match="online_ewc"):
        fresh.load_state_dict({"name": "online_ewc"})
    net = PolicyNet(4, (6,), out_dim=3)
    other = ContinualModel(net, init_params(net, seed=0))
    with pytest.raises(ValueError, match=r"layers\.0\.weight"):
        ewc.penalty(other, other.params, task.train_x, task.train_y, task)


@pytest.mark.parametrize(
    "kwargs",
    [{"lam": -1.0}, {"fisher": "exact"}, {"max_examples": 0}, {"seed": "a"}, {"max_tasks": 0}],
)
def test_bad_arguments_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        EWC(**kwargs)  # type: ignore[arg-type]
