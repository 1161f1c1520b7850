"""The training loop: it lowers the loss, calls the hooks in the documented order with what
they promise, adds the penalty, uses the adjusted gradients, trains only the trainable
parameters, restricts the loss to a task's classes, steps with SGD or Adam (restarted per task
and when the architecture grows); ``score``; ``run_sequence`` fills the entries it promises and
leaves the others NaN; seeded runs repeat."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pytest
import torch
from torch import Tensor

from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask, Strategy
from adaptd.adapters.continual.training import (
    TrainConfig,
    batch_loss,
    run_sequence,
    score,
    train_task,
)
from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.network import PolicyNet, init_params

HEAD = ("layers.2.weight", "layers.2.bias")


class Recorder(Strategy):
    """Records every hook call; optionally restricts training, adds ``scale * sum p^2``,
    zeroes the gradients, or rebuilds the network after step ``grow_at``."""

    def __init__(
        self,
        names: tuple[str, ...] | None = None,
        scale: float = 0.0,
        zero: bool = False,
        grow_at: int | None = None,
    ) -> None:
        self.names = names
        self.scale = scale
        self.zero = zero
        self.grow_at = grow_at
        super().__init__()

    def _reset(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.grad_names: list[list[str]] = []
        self.deltas: list[float] = []
        self.params_is_new: list[bool] = []

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        self.calls.append(("before_task", task.id))

    def trainable(self, model: ContinualModel, task: ContinualTask) -> tuple[str, ...] | None:
        self.calls.append(("trainable", task.id))
        return self.names

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        self.calls.append(("penalty", task.id))
        if not self.scale:
            return None
        keys = list(params) if self.names is None else self.names
        return self.scale * sum(params[k].pow(2).sum() for k in keys)  # type: ignore[return-value]

    def adjust_gradients(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        grads: dict[str, Tensor],
        task: ContinualTask,
    ) -> dict[str, Tensor]:
        self.calls.append(("adjust_gradients", task.id))
        self.grad_names.append(sorted(grads))
        return {k: torch.zeros_like(g) for k, g in grads.items()} if self.zero else grads

    def after_step(
        self,
        model: ContinualModel,
        old: Mapping[str, Tensor],
        new: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        task: ContinualTask,
    ) -> None:
        self.calls.append(("after_step", task.id))
        self.params_is_new.append(model.params is new)
        self.deltas.append(max((float((new[k] - old[k]).abs().max()) for k in grads), default=0.0))
        if self.grow_at is not None and len(self.deltas) == self.grow_at:
            model.net = copy.deepcopy(model.net)

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        self.calls.append(("after_task", task.id))


def make_model(out_dim: int = 4) -> ContinualModel:
    net = PolicyNet(3, (8,), out_dim=out_dim)
    loss = "cross_entropy" if out_dim > 1 else "mse"
    return ContinualModel(net, init_params(net, seed=0), loss=loss)


def make_task(i: int = 0, n: int = 40, classes: tuple[int, ...] | None = None) -> ContinualTask:
    g = torch.Generator().manual_seed(i)
    x = torch.randn(2 * n, 3, generator=g)
    y = (x[:, i % 3] > 0).long() + (2 if classes == (2, 3) else 0)
    return ContinualTask(i, x[:n], y[:n], x[n:], y[n:], classes=classes)


def full_loss(model: ContinualModel, task: ContinualTask) -> float:
    with torch.no_grad():
        return float(batch_loss(model, model.params, task.train_x, task.train_y, task))


def test_training_lowers_the_loss_and_reports_it() -> None:
    model, task = make_model(), make_task()
    before = full_loss(model, task)
    stats = train_task(model, Strategy(), task, TrainConfig(epochs=5, batch_size=8, lr=0.2))
    assert stats.task == 0 and stats.steps == 25 and stats.seconds >= 0
    assert full_loss(model, task) < 0.5 * before
    assert stats.loss_last < stats.loss_first


def test_hooks_are_called_in_order() -> None:
    recorder = Recorder()
    model = make_model()
    train_task(model, recorder, make_task(), TrainConfig(epochs=2, batch_size=16))
    step = [("penalty", 0), ("adjust_gradients", 0), ("after_step", 0)]
    assert recorder.calls == [("before_task", 0), ("trainable", 0), *step * 6, ("after_task", 0)]
    assert all(recorder.params_is_new)
    assert recorder.grad_names == [sorted(model.params)] * 6


def test_only_trainable_parameters_move() -> None:
    recorder = Recorder(names=HEAD)
    model = make_model()
    start = dict(model.params)
    train_task(model, recorder, make_task(), TrainConfig(epochs=2, lr=0.5))
    assert recorder.grad_names[0] == sorted(HEAD)
    for k, v in model.params.items():
        assert torch.equal(v, start[k]) != (k in HEAD), k


def test_a_strategy_may_freeze_every_parameter() -> None:
    for optimizer in ("sgd", "adam"):
        recorder = Recorder(names=())
        model = make_model()
        start = dict(model.params)
        stats = train_task(model, recorder, make_task(), TrainConfig(optimizer=optimizer))
        assert stats.steps == 2 and recorder.grad_names == [[], []]
        assert all(torch.equal(model.params[k], v) for k, v in start.items())


def test_penalty_gradient_is_added_to_the_step() -> None:
    model, task = make_model(), make_task()
    start = {k: v.clone() for k, v in model.params.items()}
    config = TrainConfig(epochs=1, batch_size=len(task.train_y), lr=0.1)
    train_task(model, Recorder(scale=0.3), task, config)
    leaves = {k: v.detach().requires_grad_() for k, v in start.items()}
    loss = batch_loss(model, leaves, task.train_x, task.train_y, task)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    for (k, v), g in zip(start.items(), grads, strict=True):
        torch.testing.assert_close(model.params[k], v - 0.1 * (g + 0.6 * v))


def test_adjusted_gradients_are_the_ones_used() -> None:
    for optimizer in ("sgd", "adam"):
        model = make_model()
        start = dict(model.params)
        train_task(model, Recorder(zero=True), make_task(), TrainConfig(optimizer=optimizer))
        for k in start:
            assert torch.equal(model.params[k], start[k]), (optimizer, k)


def test_adam_steps_and_restarts_for_each_task() -> None:
    model, task = make_model(), make_task()
    start = {k: v.clone() for k, v in model.params.items()}
    config = TrainConfig(epochs=1, batch_size=len(task.train_y), lr=0.01, optimizer="adam")
    recorder = Recorder()
    train_task(model, recorder, task, config)
    leaves = {k: v.detach().requires_grad_() for k, v in start.items()}
    loss = batch_loss(model, leaves, task.train_x, task.train_y, task)
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))
    expected = Adam(lr=0.01).step(start, grads)
    for k in start:
        torch.testing.assert_close(model.params[k], expected[k])
    # a restarted Adam's first step moves some coordinate by almost exactly lr
    train_task(model, recorder, make_task(1), config)
    assert recorder.deltas == pytest.approx([0.01, 0.01], rel=1e-3)


def test_a_grown_network_asks_for_trainable_names_and_restarts_adam() -> None:
    recorder = Recorder(grow_at=2)
    model = make_model()
    config = TrainConfig(epochs=1, batch_size=10, lr=0.01, optimizer="adam")
    train_task(model, recorder, make_task(), config)
    names = [name for name, _ in recorder.calls]
    assert names.count("trainable") == 2
    assert names.index("trainable", 2) == names.index("after_step") + 4  # right after step 2
    assert recorder.deltas[2] == pytest.approx(0.01, rel=1e-3)  # the first step of a new Adam
    assert recorder.deltas[3] != pytest.approx(0.01, rel=1e-3)


def test_task_classes_restrict_the_loss() -> None:
    model, task = make_model(), make_task(classes=(2, 3))
    out = model.output(model.params, task.train_x)
    expected = torch.nn.functional.cross_entropy(out[:, 2:], task.train_y - 2)
    value = batch_loss(model, model.params, task.train_x, task.train_y, task)
    torch.testing.assert_close(value, expected)
    start = dict(model.params)
    train_task(model, Strategy(), task, TrainConfig(epochs=2, lr=0.5))
    for k in HEAD:  # the other classes' output units get no gradient
        assert torch.equal(model.params[k][:2], start[k][:2])
        assert not torch.equal(model.params[k][2:], start[k][2:])


def test_score_is_a_restricted_accuracy_or_a_mean_squared_error() -> None:
    class Fixed(Strategy):
        def __init__(self, output: Tensor) -> None:
            self.output = output
            super().__init__()

        def predict(self, model: ContinualModel, x: Tensor, task: ContinualTask) -> Tensor:
            return self.output[: len(x)]

    logits = torch.tensor([[5.0, 1.0, 2.0, 0.0], [0.0, 3.0, 1.0, 9.0], [1.0, 0.0, 4.0, 0.0]])
    x = torch.zeros(3, 3)
    y = torch.tensor([2, 1, 2])
    free = ContinualTask(0, x, y, x, y)
    assert score(make_model(), Fixed(logits), free) == pytest.approx(1 / 3)
    restricted = free._replace(classes=(1, 2))
    assert score(make_model(), Fixed(logits), restricted, chunk=2) == pytest.approx(1.0)
    targets = torch.tensor([1.0, 0.0, -1.0])
    regression = ContinualTask(0, x, targets, x, targets)
    predictions = torch.tensor([1.5, 0.0, 1.0])
    assert score(make_model(1), Fixed(predictions), regression) == pytest.approx((0.25 + 4) / 3)


def test_run_sequence_fills_what_it_promises_and_leaves_the_rest_nan() -> None:
    tasks = [make_task(i, n=24) for i in range(5)]
    result = run_sequence(
        make_model(), Recorder(), tasks, TrainConfig(epochs=1, batch_size=8), eval_every=2
    )
    filled = ~np.isnan(result.matrix.values)
    expected = np.zeros((5, 5), dtype=bool)
    for i in range(5):
        expected[i, i] = True
        if i > 0:
            expected[i - 1, i] = True  # before training on task i
        if (i + 1) % 2 == 0 or i == 4:
            expected[i, : i + 1] = True
    assert (filled == expected).all(), filled.astype(int)
    assert not np.isnan(result.matrix.baseline).any()
    assert [s.task for s in result.tasks] == list(range(5))
    assert len(result.memory_bytes) == 5 and all(isinstance(b, int) for b in result.memory_bytes)
    assert result.parameters == [make_model().parameter_count()] * 5
    with pytest.raises(ValueError, match="eval_every"):
        run_sequence(make_model(), Strategy(), tasks, TrainConfig(), eval_every=0)


def test_run_sequence_records_scores_at_the_right_moments() -> None:
    tasks = [make_task(i, n=24) for i in range(3)]
    config = TrainConfig(epochs=2, batch_size=8, lr=0.3)
    model = make_model()
    result = run_sequence(copy.deepcopy(model), Strategy(), tasks, config)
    values = result.matrix.values
    replay = copy.deepcopy(model)
    strategy = Strategy()
    for j, task in enumerate(tasks):
        assert result.matrix.baseline[j] == score(model, strategy, task)
    for i, task in enumerate(tasks):
        if i > 0:
            assert values[i - 1, i] == score(replay, strategy, task)
        train_task(replay, strategy, task, config)
        for j in range(i + 1):
            assert values[i, j] == score(replay, strategy, tasks[j])


def test_seeded_runs_repeat_and_the_seed_matters() -> None:
    tasks = [make_task(i, n=24) for i in range(3)]
    finals = []
    for seed in (0, 0, 1):
        model = make_model()
        run_sequence(model, Strategy(), tasks, TrainConfig(epochs=1, batch_size=8, seed=seed))
        finals.append(model.params)
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[1][k])
    assert any(not torch.equal(finals[0][k], finals[2][k]) for k in finals[0])


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"batch_size": 1.5}, {"lr": 0.0}, {"optimizer": "rmsprop"}, {"epochs": True}],
)
def test_bad_configs_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)  # type: ignore[arg-type]
