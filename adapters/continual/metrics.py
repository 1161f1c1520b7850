"""The accuracy matrix of a task sequence and the continual-learning metrics computed from it,
as the GEM paper (Lopez-Paz & Ranzato, 2017) and Avalanche define them.

``R[i, j]`` is the score on task ``j``'s held-out data after training through task ``i``
(0-based, ``T`` tasks); ``b[j]`` is the untrained model's score on task ``j``. Entries that were
not evaluated are NaN and are skipped by every metric. For a loss (lower is better) every
difference is taken on ``-R``, so positive transfer is always good.

* average accuracy ``ACC = mean_j R[T-1, j]`` (GEM; Avalanche's stream accuracy);
* backward transfer ``BWT = mean_{j < T-1} (R[T-1, j] - R[j, j])`` (GEM);
* forward transfer ``FWT = mean_{j > 0} (R[j-1, j] - b[j])`` (GEM);
* forgetting ``mean_{j < T-1} (max_{l < T-1} R[l, j] - R[T-1, j])`` (Chaudhry et al., 2018;
  Avalanche's per-experience forgetting uses ``R[j, j]`` in place of the maximum, which makes
  it ``-BWT``: :meth:`AccuracyMatrix.avalanche_forgetting`). The maximum runs over the rows
  that were evaluated;
* retention of task ``j``: ``R[T-1, j] / R[j, j]`` (for a loss ``R[j, j] / R[T-1, j]``), 1 when
  nothing was lost; summarised as mean and worst over the earliest 10 % of tasks and over all.

Examples
--------
>>> m = AccuracyMatrix(3)
>>> for (i, j), v in {(0, 0): 0.9, (1, 0): 0.8, (1, 1): 0.9, (2, 0): 0.6, (2, 1): 0.9,
...                   (2, 2): 1.0, (0, 1): 0.1, (1, 2): 0.2}.items():
...     m.record(i, j, v)
>>> for j in range(3):
...     m.record_baseline(j, 0.1)
>>> round(m.average_accuracy(), 4), round(m.backward_transfer(), 4)
(0.8333, -0.15)
>>> round(m.forward_transfer(), 4), round(m.forgetting(), 4)
(0.05, 0.15)
>>> [round(r, 4) for r in m.retention()]
[0.6667, 1.0, 1.0]
>>> m.retention_summary(0.1)["earliest"]
{'tasks': 1, 'mean': 0.6667, 'worst': 0.6667}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..checks import positive_int

__all__ = ["AccuracyMatrix"]


class AccuracyMatrix:
    """``R[i, j]`` for ``n_tasks`` tasks, with the field's metrics.

    Parameters
    ----------
    n_tasks
        Tasks in the sequence.
    higher_is_better
        True for accuracies, False for losses.
    """

    def __init__(self, n_tasks: int, *, higher_is_better: bool = True) -> None:
        self.n_tasks = positive_int("n_tasks", n_tasks)
        self.higher_is_better = higher_is_better
        self.values = np.full((n_tasks, n_tasks), np.nan)
        """``R``; NaN where not evaluated."""
        self.baseline = np.full(n_tasks, np.nan)
        """``b``: each task's score before any training."""

    def record(self, i: int, j: int, value: float) -> None:
        """``R[i, j] = value``."""
        self.values[i, j] = value

    def record_baseline(self, j: int, value: float) -> None:
        """``b[j] = value``."""
        self.baseline[j] = value

    def _perf(self, values: np.ndarray) -> np.ndarray:
        return values if self.higher_is_better else -values

    def _last(self) -> int:
        return self.n_tasks - 1

    def average_accuracy(self, i: int | None = None) -> float:
        """Mean of ``R[i, j]`` over ``j <= i`` (default: the last row)."""
        i = self._last() if i is None else i
        return _mean(self.values[i, : i + 1])

    def backward_transfer(self) -> float:
        """Mean over ``j < T-1`` of ``R[T-1, j] - R[j, j]`` (negative: forgetting)."""
        t = self._last()
        diag = np.diagonal(self.values)[:t]
        return _mean(self._perf(self.values[t, :t]) - self._perf(diag))

    def forward_transfer(self) -> float:
        """Mean over ``j > 0`` of ``R[j-1, j] - b[j]``: what earlier tasks gave a new one."""
        before = np.array([self.values[j - 1, j] for j in range(1, self.n_tasks)])
        return _mean(self._perf(before) - self._perf(self.baseline[1:]))

    def forgetting(self) -> float:
        """Mean over ``j < T-1`` of the best evaluated score before the last task minus the
        final one (Chaudhry et al.)."""
        t = self._last()
        if t == 0:
            return math.nan
        earlier = self._perf(self.values[:t, :t])
        best = np.array([_max(earlier[j:, j]) for j in range(t)])
        return _mean(best - self._perf(self.values[t, :t]))

    def avalanche_forgetting(self) -> float:
        """Mean over ``j < T-1`` of ``R[j, j] - R[T-1, j]`` (Avalanche), that is ``-BWT``."""
        return -self.backward_transfer()

    def retention(self) -> list[float]:
        """Per task ``j``: ``R[T-1, j] / R[j, j]`` (losses: ``R[j, j] / R[T-1, j]``)."""
        t = self._last()
        final, diag = self.values[t], np.diagonal(self.values)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = final / diag if self.higher_is_better else diag / final
        return [float(r) for r in ratio]

    def retention_summary(self, earliest: float = 0.1) -> dict[str, dict[str, Any]]:
        """Mean and worst retention over the earliest ``earliest`` fraction of tasks (at least
        one) and over all tasks."""
        ratios = np.array(self.retention())
        head = max(1, round(earliest * self.n_tasks))
        return {"earliest": _summary(ratios[:head]), "all": _summary(ratios)}

    def summary(self) -> dict[str, Any]:
        """Every metric, rounded, for reports."""
        return {
            "tasks": self.n_tasks,
            "average_accuracy": _round(self.average_accuracy()),
            "backward_transfer": _round(self.backward_transfer()),
            "forward_transfer": _round(self.forward_transfer()),
            "forgetting": _round(self.forgetting()),
            "retention": self.retention_summary(),
        }


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _mean(values: np.ndarray) -> float:
    kept = _finite(values)
    return float(kept.mean()) if kept.size else math.nan


def _max(values: np.ndarray) -> float:
    kept = _finite(values)
    return float(kept.max()) if kept.size else math.nan


def _round(value: float) -> float:
    return round(value, 4) if math.isfinite(value) else value


def _summary(values: np.ndarray) -> dict[str, Any]:
    kept = _finite(values)
    return {
        "tasks": int(values.size),
        "mean": _round(float(kept.mean())) if kept.size else math.nan,
        "worst": _round(float(kept.min())) if kept.size else math.nan,
    }
