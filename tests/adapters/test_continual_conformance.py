"""The continual-learning conformance suite: every strategy in ``adaptd.adapters.continual`` is
found automatically (:func:`adaptd.adapters.continual.registry.strategies`) and checked, once
for each of its ``conformance_options``, against the protocol alone.

Adding a strategy file adds it here. Checks: a regularizer's penalty is zero at the weights it
was computed at on the task it was computed from, and positive away from them; training a new
task moves the trainable weights; the penalty's gradients are finite and reach a trainable
parameter away from the anchor; ``state_dict`` survives ``torch.save``/``torch.load`` with
``weights_only=True`` and a fresh instance continues exactly; seeded runs repeat; another
strategy's state is refused; ``memory_bytes`` is a non-negative int; the registry holds every
strategy the project promises.

Models are deep-copied for every run, since some strategies replace ``model.net`` (progressive
columns, grown units).
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask, Strategy
from adaptd.adapters.continual.registry import strategies
from adaptd.adapters.continual.training import TrainConfig, run_sequence, train_task
from adaptd.adapters.network import PolicyNet, init_params

EXPECTED = [
    # plain fine-tuning and the regularizers
    "naive",
    "ewc",
    "online_ewc",
    "si",
    "mas",
    "lwf",
    # gradient episodic memory
    "gem",
    "agem",
    # replay
    "replay",
    "coreset",
    "generative",
    # architectures
    "progressive",
    "packnet",
    "growth",
]
"""Every strategy issue 4 promises, by registry name."""

CONFIG = TrainConfig(epochs=2, batch_size=16, lr=0.1)
IN_DIM, CLASSES = 6, 4


@dataclass(frozen=True)
class Case:
    """A strategy class with one of its ``conformance_options``; called like the class."""

    cls: type[Strategy]
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> Strategy:
        return self.cls(**dict(self.options))

    def __str__(self) -> str:
        return "-".join([self.cls.name, *(f"{k}={v}" for k, v in self.options)])


STRATEGIES = strategies()
CASES = [
    Case(STRATEGIES[name], tuple(sorted(options.items())))
    for name in sorted(STRATEGIES)
    for options in STRATEGIES[name].conformance_options
]
REGULARIZERS = [case for case in CASES if case.cls.regularizer]


def make_tasks(seed: int = 0, n_train: int = 64, n_test: int = 32) -> list[ContinualTask]:
    """Three tasks on the same inputs whose labels come from different random linear rules,
    so that they interfere."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for i in range(3):
        rule = torch.randn(IN_DIM, CLASSES, generator=g)
        x = torch.randn(n_train + n_test, IN_DIM, generator=g)
        y = (x @ rule).argmax(-1)
        tasks.append(ContinualTask(i, x[:n_train], y[:n_train], x[n_train:], y[n_train:]))
    return tasks


TASKS = make_tasks()


def make_model() -> ContinualModel:
    net = PolicyNet(IN_DIM, (16,), out_dim=CLASSES)
    return ContinualModel(net, init_params(net, seed=0))


def shifted(params: dict[str, torch.Tensor], scale: float = 0.1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: v + scale * torch.randn(v.shape, generator=g) for k, v in params.items()}


def trained(case: Case, count: int) -> tuple[ContinualModel, Strategy]:
    """A fresh model and strategy trained on the first ``count`` tasks."""
    model, strategy = make_model(), case()
    for task in TASKS[:count]:
        train_task(model, strategy, task, CONFIG)
    return model, strategy


def trainable_names(strategy: Strategy, model: ContinualModel, task: ContinualTask) -> list[str]:
    names = strategy.trainable(model, task)
    return list(model.params) if names is None else list(names)


@pytest.mark.parametrize("case", REGULARIZERS, ids=str)
def test_regularizer_penalty_is_zero_at_its_anchor(case: Case) -> None:
    model, strategy = trained(case, 1)
    task = TASKS[0]
    at_anchor = strategy.penalty(model, model.params, task.train_x, task.train_y, task)
    assert at_anchor is not None, "a regularizer has a penalty once a task is done"
    assert abs(float(at_anchor)) < 1e-7
    away = strategy.penalty(model, shifted(model.params), task.train_x, task.train_y, task)
    assert away is not None and float(away) > 0


@pytest.mark.parametrize("case", CASES, ids=str)
def test_training_moves_the_trainable_weights(case: Case) -> None:
    model, strategy = trained(case, 1)
    seen: dict[str, Any] = {}
    before_task = strategy.before_task

    def spy(model: ContinualModel, task: ContinualTask) -> None:
        before_task(model, task)
        seen["params"] = dict(model.params)
        seen["names"] = trainable_names(strategy, model, task)

    strategy.before_task = spy  # type: ignore[method-assign]
    train_task(model, strategy, TASKS[1], CONFIG)
    start, names = seen["params"], seen["names"]
    assert names, "some parameter must be trainable"
    comparable = [k for k in names if k in model.params and model.params[k].shape == start[k].shape]
    assert any(not torch.equal(model.params[k], start[k]) for k in comparable)
    for k, v in model.params.items():
        assert torch.isfinite(v).all(), k


@pytest.mark.parametrize("case", CASES, ids=str)
def test_penalty_gradients_are_finite_and_reach_trainable_weights(case: Case) -> None:
    model, strategy = trained(case, 2)
    task = TASKS[2]
    strategy.before_task(model, task)
    names = trainable_names(strategy, model, task)
    for params, away in ((dict(model.params), False), (shifted(model.params), True)):
        leaves = dict(params)
        leaves.update({k: params[k].detach().requires_grad_() for k in names})
        with torch.enable_grad():
            extra = strategy.penalty(model, leaves, task.train_x[:16], task.train_y[:16], task)
            if extra is None:
                return
            assert extra.shape == () and torch.isfinite(extra)
            grads = torch.autograd.grad(extra, [leaves[k] for k in names], allow_unused=True)
        grads = [g for g in grads if g is not None]
        assert all(torch.isfinite(g).all() for g in grads)
        if away:
            assert any(float(g.abs().max()) > 0 for g in grads), "no gradient away from anchor"


def _save_and_load(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_round_trips_and_training_continues_identically(case: Case) -> None:
    model, strategy = trained(case, 2)
    state = strategy.state_dict()
    assert state["name"] == case.cls.name
    fresh = case()
    fresh.load_state_dict(_save_and_load(state))
    twin = copy.deepcopy(model)
    train_task(model, strategy, TASKS[2], CONFIG)
    train_task(twin, fresh, TASKS[2], CONFIG)
    assert sorted(model.params) == sorted(twin.params)
    for k in model.params:
        assert torch.equal(model.params[k], twin.params[k]), k
    with torch.no_grad():
        for task in TASKS:
            a = strategy.predict(model, task.test_x, task)
            b = fresh.predict(twin, task.test_x, task)
            assert torch.equal(a, b), f"predictions differ on task {task.id}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_seeded_runs_repeat(case: Case) -> None:
    model = make_model()
    results, finals = [], []
    for _ in range(2):
        run_model = copy.deepcopy(model)
        results.append(run_sequence(run_model, case(), TASKS, CONFIG))
        finals.append(run_model.params)
    a, b = results
    assert np.array_equal(a.matrix.values, b.matrix.values, equal_nan=True)
    assert a.memory_bytes == b.memory_bytes and a.parameters == b.parameters
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[1][k]), k


@pytest.mark.parametrize("case", CASES, ids=str)
def test_other_states_are_refused_and_memory_is_counted(case: Case) -> None:
    strategy = case()
    other = "ewc" if case.cls.name != "ewc" else "naive"
    with pytest.raises(ValueError, match=other):
        strategy.load_state_dict({"name": other})
    with pytest.raises(ValueError, match=case.cls.name):
        strategy.load_state_dict({})
    empty = strategy.memory_bytes()
    assert isinstance(empty, int) and empty >= 0
    _, strategy = trained(case, 1)
    used = strategy.memory_bytes()
    assert isinstance(used, int) and not isinstance(used, bool) and used >= 0


def test_registry_holds_every_promised_strategy() -> None:
    missing = sorted(set(EXPECTED) - set(STRATEGIES))
    assert not missing, f"strategies not registered: {missing}"
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        assert cls.conformance_options, f"{name} has no conformance options"
