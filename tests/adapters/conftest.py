"""A synthetic family of regression tasks that behaves like regime changes, for the learners.

Each task is one regime: the scaled forward return depends on one of the features, with a
regime-specific sign, strength and drift, ``y = a * x[:, k] + b + noise``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from adaptd.adapters import Task

IN_DIM = 4

MakeTask = Callable[..., Task]


def regime_task(
    generator: torch.Generator, *, shots: int = 8, queries: int = 16, noise: float = 0.1
) -> Task:
    k = int(torch.randint(IN_DIM, (1,), generator=generator))
    strength = 0.5 + float(torch.rand((), generator=generator))
    sign = 1.0 if float(torch.rand((), generator=generator)) < 0.5 else -1.0
    drift = float(torch.rand((), generator=generator)) - 0.5
    x = torch.randn(shots + queries, IN_DIM, generator=generator)
    y = (
        sign * strength * x[:, k]
        + drift
        + noise * torch.randn(shots + queries, generator=generator)
    )
    return Task(x[:shots], y[:shots], x[shots:], y[shots:])


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One torch thread for the learning tests: their tiny networks run several times slower
    with two threads on a busy two-core machine. The previous setting is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_task() -> MakeTask:
    return regime_task
