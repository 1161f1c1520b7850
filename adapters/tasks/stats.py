"""Summary statistics for evaluation results: a mean with its 95 % confidence half-width.

The interval is the normal approximation ``mean ± 1.96 · s / √n`` with ``s`` the sample
standard deviation (``ddof=1``), as the MAML and Meta-SGD papers report over their 600
evaluation tasks. It is a good approximation for the task counts used here (tens to
thousands); for a handful of values a Student t quantile would be wider. With one value the
half-width is 0 (no spread can be estimated), not a guess.

Examples
--------
>>> mean, half = mean_ci95([1.0, 2.0, 3.0, 4.0])
>>> round(mean, 3), round(half, 3)
(2.5, 1.265)
>>> Estimate.of([0.5, 0.5]).half_width
0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

__all__ = ["Z95", "Estimate", "mean_ci95"]

Z95 = 1.959963984540054
"""The standard normal 97.5 % quantile: ``mean ± Z95 · s / √n`` is a 95 % interval."""


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """``(mean, half_width)`` of ``values``, half-width ``1.96 · s / √n`` (``s`` with ``ddof=1``).

    Raises ValueError when ``values`` is empty or holds a non-finite number.
    """
    array = np.asarray(list(values), dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError("values is empty: no mean to estimate")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"values must be finite, got {array[~np.isfinite(array)][:3].tolist()}")
    mean = float(array.mean())
    if array.size == 1:
        return mean, 0.0
    return mean, Z95 * float(array.std(ddof=1)) / math.sqrt(array.size)


class Estimate(NamedTuple):
    """A mean over ``n`` values (tasks, episodes) with its 95 % confidence half-width."""

    mean: float
    half_width: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Estimate:
        """The estimate of ``values`` (see ``mean_ci95``)."""
        array = np.asarray(list(values), dtype=np.float64).ravel()
        mean, half = mean_ci95(array)
        return cls(mean, half, int(array.size))

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.half_width:.2g} (n={self.n})"
