"""Linear-model tasks and a numpy gradient-descent reference, for hand-checking learners.

A ``PolicyNet(3, hidden=())`` is ``y = x @ w.T + b`` with ``w`` of shape ``(1, 3)`` and ``b``
of shape ``(1,)``, so its inner loop can be written out in float64 numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from adaptd.adapters.protocol import Task

LinearTasks = Callable[..., list[Task]]


def linear_grads(
    w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of mean((x @ w.T + b - y)^2) with respect to ``w`` (1, d) and ``b`` (1,)."""
    r = x @ w[0] + b[0] - y
    return (2.0 / len(y)) * (r @ x)[None, :], (2.0 / len(y)) * np.array([r.sum()])


def linear_descent(
    w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` of gradient descent of size ``lr`` on that loss; the final ``(w, b)``."""
    for _ in range(steps):
        gw, gb = linear_grads(w, b, x, y)
        w, b = w - lr * gw, b - lr * gb
    return w, b


@pytest.fixture
def linear_tasks() -> LinearTasks:
    """Factory: ``linear_tasks(sizes, seed=0)``, one task per ``(n_support, n_query)``, each a
    different linear function of 3 features."""

    def make(sizes: list[tuple[int, int]], seed: int = 0) -> list[Task]:
        g = torch.Generator().manual_seed(seed)
        out = []
        for i, (n_support, n_query) in enumerate(sizes):
            x = torch.randn(n_support + n_query, 3, generator=g)
            y = (1.0 - i) * x[:, 1] + 0.3 * x[:, 0] - 0.2 * i
            out.append(Task(x[:n_support], y[:n_support], x[n_support:], y[n_support:]))
        return out

    return make


@pytest.fixture
def linear_reference() -> tuple[Callable[..., tuple], Callable[..., tuple]]:
    """``(linear_grads, linear_descent)``, the numpy reference of the inner loop."""
    return linear_grads, linear_descent
