"""Joint training, the upper bound on average accuracy: one model trained on every task's
training data mixed, then scored on every task.

It gets the same number of passes over each example as the sequence gives it (``epochs`` of
the :class:`~.runs.Setup`), in shuffled batches over all tasks; in a task-incremental
sequence each example keeps its own task's outputs. Sources of mixed data are
:class:`ConcatenatedTasks` (materialised tasks) and :class:`~.data.PermutedTasks` (which
draws batches of any of its tasks without building them).

Examples
--------
>>> import torch
>>> from bench.learn.continual import data
>>> from bench.learn.continual.runs import Setup
>>> tasks = data.split_tasks(data.load("digits"), "task", n_tasks=2, train_size=40)
>>> source = ConcatenatedTasks(tasks)  # each example may use its own task's 5 classes
>>> source.train_examples(), source.joint_classes(torch.tensor([0, 79]), 10).sum(1).tolist()
(80, [5, 5])
>>> joint = run_joint(source, tasks, Setup(in_dim=64, out_dim=10, hidden=(8,)))
>>> len(joint["scores"]), joint["steps"], 0.0 <= joint["average_accuracy"] <= 1.0
(2, 8, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from adaptd.adapters.continual import ContinualTask, Strategy, score
from adaptd.adapters.continual.seeds import derive_seed
from adaptd.adapters.meta.adam import Adam

from .runs import Setup, _r, _tenths

__all__ = ["ConcatenatedTasks", "JointSource", "run_joint"]


class JointSource(Protocol):
    """Every task's training data, mixed: what joint training draws from."""

    def train_examples(self) -> int:
        """Examples in all tasks together."""
        ...

    def joint_batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of the examples ``index`` (positions in ``0 .. train_examples() - 1``)."""
        ...


class ConcatenatedTasks:
    """A :class:`JointSource` over materialised tasks; in a task-incremental sequence each
    example keeps its task's classes (``joint_classes``)."""

    def __init__(self, tasks: Sequence[ContinualTask]) -> None:
        self.x = torch.cat([t.train_x for t in tasks])
        self.y = torch.cat([t.train_y for t in tasks])
        self.task = torch.cat([torch.full((len(t.train_y),), i) for i, t in enumerate(tasks)])
        self.classes = [t.classes for t in tasks]

    def train_examples(self) -> int:
        return len(self.y)

    def joint_batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[index], self.y[index]

    def joint_classes(self, index: Tensor, out_dim: int) -> Tensor | None:
        """``(len(index), out_dim)`` mask of the outputs each example's task may use, or
        None when the tasks have no classes."""
        if all(c is None for c in self.classes):
            return None
        keep = torch.ones(len(self.classes), out_dim, dtype=torch.bool)
        for i, classes in enumerate(self.classes):
            if classes is not None:
                keep[i] = False
                keep[i, list(classes)] = True
        return keep[self.task[index]]


def run_joint(
    source: JointSource,
    tasks: Sequence[ContinualTask],
    setup: Setup,
) -> dict[str, Any]:
    """Joint training on ``source`` for ``setup.epochs`` passes, scored on every task of
    ``tasks``: ``{"scores", "average_accuracy", "by_tenth", "steps", "seconds"}``."""
    start = time.perf_counter()
    model = setup.model()
    n = source.train_examples()
    generator = torch.Generator().manual_seed(derive_seed(setup.seed, 999_983))
    adam = Adam(lr=setup.lr) if setup.optimizer == "adam" else None
    masks = getattr(source, "joint_classes", None)
    steps = 0
    for _ in range(setup.epochs):
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n, setup.batch_size):
            index = order[lo : lo + setup.batch_size]
            x, y = source.joint_batch(index)
            keep = masks(index, setup.out_dim) if masks is not None else None
            params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
            with torch.enable_grad():
                out = model.output(params, x)
                if model.loss == "cross_entropy":
                    logits = out if keep is None else out.masked_fill(~keep, float("-inf"))
                    loss = torch.nn.functional.cross_entropy(logits, y)
                else:
                    loss = torch.mean((out - y) ** 2)
                grads = torch.autograd.grad(loss, list(params.values()))
            old = {k: v.detach() for k, v in params.items()}
            if adam is None:
                model.params = {k: old[k] - setup.lr * g for k, g in zip(old, grads, strict=True)}
            else:
                model.params = adam.step(old, dict(zip(old, grads, strict=True)))
            steps += 1
    trained = time.perf_counter() - start
    naive = Strategy()
    scores = np.array([score(model, naive, tasks[j]) for j in range(len(tasks))])
    return {
        "scores": [_r(float(s)) for s in scores] if len(scores) <= 100 else None,
        "average_accuracy": _r(float(scores.mean())),
        "by_tenth": [_r(float(part.mean())) for part in _tenths(scores)],
        "steps": steps,
        "train_seconds": _r(trained, 3),
        "seconds": _r(time.perf_counter() - start, 3),
    }
