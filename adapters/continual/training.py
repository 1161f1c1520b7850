"""The training loop every strategy plugs into: one task at a time, then a whole sequence
with its accuracy matrix.

:func:`train_task` runs the hooks of :class:`~adaptd.adapters.continual.protocol.Strategy`
around plain minibatch SGD (or Adam, restarted per task) on fast weights.
:func:`run_sequence` trains through a sequence of tasks and fills an
:class:`~adaptd.adapters.continual.metrics.AccuracyMatrix`: the score of every task on the
untrained model (for forward transfer), of task ``j`` just before and just after training on it,
and of every task seen so far every ``eval_every`` tasks and after the last one.

Scores are accuracies (classification, restricted to the task's classes when it has them) or
mean squared errors (regression, lower is better).

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask, Strategy
>>> g = torch.Generator().manual_seed(0)
>>> def task(i):
...     x = torch.randn(64, 4, generator=g)
...     y = (x[:, i] > 0).long()
...     return ContinualTask(i, x[:48], y[:48], x[48:], y[48:])
>>> net = PolicyNet(4, (16,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> result = run_sequence(model, Strategy(), [task(0), task(1)], TrainConfig(epochs=5, lr=0.5))
>>> result.matrix.values.shape, len(result.tasks)
((2, 2), 2)
>>> bool(result.matrix.values[1, 1] > 0.8)
True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from ..checks import one_of, positive, positive_int
from ..fast_weights import Params
from ..losses import detached_leaves
from ..meta.adam import Adam
from .metrics import AccuracyMatrix
from .protocol import ContinualModel, ContinualTask, Strategy, restrict
from .seeds import derive_seed

__all__ = [
    "SequenceResult",
    "TaskStats",
    "TrainConfig",
    "batch_loss",
    "run_sequence",
    "score",
    "train_task",
]


@dataclass(frozen=True)
class TrainConfig:
    """How each task is trained."""

    epochs: int = 1
    """Passes over the task's training set."""
    batch_size: int = 32
    """Examples per step (the last batch of an epoch may be smaller)."""
    lr: float = 0.05
    """Step size."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """"sgd" (plain) or "adam" (moments restarted at each task)."""
    seed: int = 0
    """Seed of the batch order (combined with the task id)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        positive("lr", self.lr)
        one_of("optimizer", self.optimizer, ("sgd", "adam"))


class TaskStats(NamedTuple):
    """What training on one task did."""

    task: int
    steps: int
    loss_first: float
    """Task loss of the first batch (before its step), without the strategy's penalty."""
    loss_last: float
    """Task loss of the last batch (before its step)."""
    seconds: float
    """Wall-clock time of the hooks and the steps (evaluation excluded)."""


def batch_loss(
    model: ContinualModel, params: Params, x: Tensor, y: Tensor, task: ContinualTask
) -> Tensor:
    """The task loss of a batch: cross-entropy over the task's classes, or the MSE."""
    out = model.output(params, x)
    if model.loss == "cross_entropy":
        return torch.nn.functional.cross_entropy(restrict(out, task.classes), y)
    return torch.mean((out - y) ** 2)


def train_task(
    model: ContinualModel, strategy: Strategy, task: ContinualTask, config: TrainConfig
) -> TaskStats:
    """Train ``model`` on ``task`` under ``strategy``'s hooks; ``model.params`` ends at the
    trained weights."""
    start = time.perf_counter()
    strategy.before_task(model, task)
    names = strategy.trainable(model, task)
    generator = torch.Generator().manual_seed(derive_seed(config.seed, task.id))
    optimizer = Adam(lr=config.lr) if config.optimizer == "adam" else None
    n = len(task.train_y)
    steps, first, last = 0, float("nan"), float("nan")
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n, config.batch_size):
            idx = order[lo : lo + config.batch_size]
            x, y = task.train_x[idx], task.train_y[idx]
            keys = list(model.params) if names is None else list(names)
            params = detached_leaves(model.params, keys)
            with torch.enable_grad():
                loss = batch_loss(model, params, x, y, task)
                extra = strategy.penalty(model, params, x, y, task)
                total = loss if extra is None else loss + extra
                # a strategy may freeze every parameter (a full PackNet): the hooks still run
                leaves = [params[k] for k in keys]
                values = torch.autograd.grad(total, leaves) if leaves else ()
                grads = dict(zip(keys, values, strict=True))
            grads = strategy.adjust_gradients(model, params, grads, task)
            old = {k: v.detach() for k, v in params.items()}
            new = dict(old)
            if optimizer is None:
                new.update({k: old[k] - config.lr * g for k, g in grads.items()})
            else:
                new.update(optimizer.step({k: old[k] for k in grads}, grads))
            model.params = new
            net = model.net
            strategy.after_step(model, old, new, grads, task)
            if model.net is not net:  # the architecture grew: names and moments start over
                names = strategy.trainable(model, task)
                optimizer = Adam(lr=config.lr) if optimizer is not None else None
            if steps == 0:
                first = float(loss.detach())
            last = float(loss.detach())
            steps += 1
    strategy.after_task(model, task)
    return TaskStats(task.id, steps, first, last, time.perf_counter() - start)


@torch.no_grad()
def score(
    model: ContinualModel, strategy: Strategy, task: ContinualTask, *, chunk: int = 4096
) -> float:
    """``task``'s held-out score under ``strategy.predict``: accuracy, or MSE for regression."""
    total, n = 0.0, len(task.test_y)
    for lo in range(0, n, chunk):
        x, y = task.test_x[lo : lo + chunk], task.test_y[lo : lo + chunk]
        out = strategy.predict(model, x, task)
        if model.loss == "cross_entropy":
            total += float((restrict(out, task.classes).argmax(-1) == y).sum())
        else:
            total += float(((out - y) ** 2).sum())
    return total / n


class SequenceResult(NamedTuple):
    """What :func:`run_sequence` measured."""

    matrix: AccuracyMatrix
    tasks: list[TaskStats]
    memory_bytes: list[int]
    """``strategy.memory_bytes()`` after each task."""
    parameters: list[int]
    """Scalars in the model after each task (grows for progressive networks and growth)."""


def run_sequence(
    model: ContinualModel,
    strategy: Strategy,
    tasks: Sequence[ContinualTask],
    config: TrainConfig,
    *,
    eval_every: int = 1,
) -> SequenceResult:
    """Train through ``tasks`` in order and record the accuracy matrix.

    ``R[i, j]`` is recorded for every ``j <= i`` when ``i + 1`` is a multiple of
    ``eval_every`` and for the last task; ``R[j, j]`` and ``R[j - 1, j]`` always; the untrained
    model's score on every task is the matrix's ``baseline``. ``tasks`` may be a lazy sequence
    (it is indexed, and each task is built again when it is evaluated).
    """
    positive_int("eval_every", eval_every)
    count = len(tasks)
    matrix = AccuracyMatrix(count, higher_is_better=model.loss == "cross_entropy")
    for j in range(count):
        matrix.record_baseline(j, score(model, strategy, tasks[j]))
    stats: list[TaskStats] = []
    memory: list[int] = []
    sizes: list[int] = []
    for i in range(count):
        task = tasks[i]
        if i > 0:
            matrix.record(i - 1, i, score(model, strategy, task))
        stats.append(train_task(model, strategy, task, config))
        memory.append(strategy.memory_bytes())
        sizes.append(model.parameter_count())
        if (i + 1) % eval_every == 0 or i == count - 1:
            for j in range(i + 1):
                matrix.record(i, j, score(model, strategy, task if j == i else tasks[j]))
        else:
            matrix.record(i, i, score(model, strategy, task))
    return SequenceResult(matrix, stats, memory, sizes)
