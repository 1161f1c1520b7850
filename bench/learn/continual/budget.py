"""How many tasks of a long sequence a strategy can run within a time budget.

A strategy whose cost grows with the tasks it has seen (progressive columns) cannot run 1000
tasks on this machine; others can. :func:`pilot` runs a strategy on the first few tasks and
times each task's training and, at the end, each task's evaluation; :func:`plan` fits the
strategy's declared growth ``t(i) = a + b * i ** k`` (``k`` from the configuration: 0 for a
bounded cost, then ``a`` is the mean of the pilot's second half, past any ramp-up of memories
or penalties) to both and picks the longest sequence of a ladder (1000, 500, 200, ...) whose
predicted time, training plus :func:`run_sequence`'s evaluation schedule, fits the budget.
The pilot's numbers, the prediction and the reason for the choice go into the JSON.

Examples
--------
>>> fit([1.0, 1.0, 1.0, 1.0], 0.0)
(1.0, 0.0)
>>> a, b = fit([1.0, 2.0, 3.0, 4.0], 1.0)
>>> round(a, 6), round(b, 6)
(1.0, 1.0)
>>> round(predicted_seconds(10, (1.0, 0.0), (0.1, 0.0), 0.0, eval_every=5), 6)
14.2
>>> plan([0.1] * 8, [0.01] * 8, growth=0.0, budget=60.0)["tasks"]
200
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adaptd.adapters.continual import ContinualTask, run_sequence, score, strategies

from .runs import Setup

__all__ = ["LADDER", "eval_every_for", "fit", "pilot", "plan", "predicted_seconds"]

LADDER = (1000, 500, 200, 100, 50, 20, 10)
"""Sequence lengths tried, longest first."""


def eval_every_for(n_tasks: int) -> int:
    """Full rows of the accuracy matrix every this many tasks: 20 rows in all."""
    return max(1, n_tasks // 20)


def fit(seconds: Sequence[float], growth: float) -> tuple[float, float]:
    """``(a, b)`` of ``a + b * i ** growth`` fitted to ``seconds[i]`` (``b >= 0``); for
    ``growth`` 0 the mean of the second half, ``b = 0``."""
    t = np.asarray(seconds, dtype=float)
    if t.size == 0:
        raise ValueError("seconds must not be empty")
    if growth <= 0 or t.size < 3:
        return float(t[t.size // 2 :].mean()), 0.0
    i = np.arange(t.size, dtype=float) ** growth
    b, a = np.polyfit(i, t, 1)
    if b < 0:
        return float(t.mean()), 0.0
    return float(a), float(b)


def predicted_seconds(
    n_tasks: int,
    train: tuple[float, float],
    evaluate: tuple[float, float],
    growth: float,
    *,
    eval_every: int,
) -> float:
    """Predicted seconds of :func:`run_sequence` on ``n_tasks``: each task trained, scored
    untrained and just before its training, then every task seen in each full row, or only
    itself in the other rows."""
    i = np.arange(n_tasks, dtype=float)
    per_train = train[0] + train[1] * i**growth
    per_eval = evaluate[0] + evaluate[1] * i**growth
    cumulative = np.cumsum(per_eval)
    rows = sum(
        cumulative[r] if (r + 1) % eval_every == 0 or r == n_tasks - 1 else per_eval[r]
        for r in range(n_tasks)
    )
    return float(per_train.sum() + per_eval.sum() + per_eval[1:].sum() + rows)


def plan(
    train_seconds: Sequence[float],
    eval_seconds: Sequence[float],
    *,
    growth: float,
    budget: float,
    ladder: Sequence[int] = LADDER,
    max_tasks: int | None = None,
) -> dict[str, Any]:
    """The longest ``ladder`` entry (at most ``max_tasks``) predicted to fit ``budget``
    seconds, from a pilot's per-task training and evaluation seconds."""
    train, evaluate = fit(train_seconds, growth), fit(eval_seconds, growth)
    allowed = [n for n in ladder if max_tasks is None or n <= max_tasks] or [min(ladder)]
    predictions = {
        n: predicted_seconds(n, train, evaluate, growth, eval_every=eval_every_for(n))
        for n in allowed
    }
    fitting = [n for n in allowed if predictions[n] <= budget]
    tasks = max(fitting) if fitting else min(allowed)
    if tasks == max(ladder):
        reason = "the whole sequence fits the time budget"
    elif fitting and max_tasks is not None and tasks == max(allowed):
        reason = f"capped at {max_tasks} tasks by its configuration"
    elif fitting:
        reason = f"{min(n for n in allowed if n > tasks)} tasks would take about " + (
            f"{predictions[min(n for n in allowed if n > tasks)]:.0f} s, over the budget"
        )
    else:
        reason = "even the shortest sequence is predicted over the budget"
    return {
        "tasks": tasks,
        "reason": reason,
        "budget_seconds": budget,
        "growth": growth,
        "train_fit": [round(v, 6) for v in train],
        "eval_fit": [round(v, 6) for v in evaluate],
        "predicted_seconds": {str(n): round(s, 1) for n, s in predictions.items()},
    }


def pilot(
    name: str,
    options: Mapping[str, Any],
    tasks: Sequence[ContinualTask],
    setup: Setup,
) -> tuple[list[float], list[float]]:
    """Per-task training seconds of ``name`` on ``tasks`` and, after the last, each task's
    evaluation seconds."""
    strategy = strategies()[name](**options)
    model = setup.model()
    result = run_sequence(model, strategy, tasks, setup.train_config(), eval_every=len(tasks))
    evaluation = []
    for j in range(len(tasks)):
        start = time.perf_counter()  # building the task is part of evaluating it
        score(model, strategy, tasks[j])
        evaluation.append(time.perf_counter() - start)
    return [s.seconds for s in result.tasks], evaluation
