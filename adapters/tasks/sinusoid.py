"""Sinusoid regression tasks, the MAML paper's regression distribution.

A task is a sine wave ``y = A · sin(x − φ)`` with amplitude ``A ~ U[0.1, 5]`` and phase
``φ ~ U[0, π]``, observed at inputs ``x ~ U[−5, 5]`` (Finn, Abbeel & Levine, 2017, section
5.1). A meta-batch holds tasks with ``K`` support and ``K`` query points each.

Two ways to draw meta-training tasks:

- fresh (``pool_size=None``, the paper's setting): every task has a new ``(A, φ)``;
- pool (``pool_size=M``): ``M`` pairs ``(A, φ)`` are drawn once; a task picks one of them
  uniformly at random, with fresh inputs ``x`` every time. The convergence benchmark compares
  pools of 10 to 1000 tasks with fresh tasks. Pools from one seed are nested: the pool of 10
  is the first 10 waves of the pool of 30.

Evaluation tasks come from ``evaluation_tasks``, which uses its own seed only, so the held-out
set is the same whatever was sampled before (and a pool never contains one of its waves,
except with probability zero).

Examples
--------
>>> tasks = SinusoidTasks(seed=0).sample(25, k_support=10, k_query=10)
>>> len(tasks), tuple(tasks[0].support_x.shape), tuple(tasks[0].query_y.shape)
(25, (10, 1), (10,))
>>> held_out = SinusoidTasks().evaluation_tasks(600, k_support=5, n_query=100, seed=1)
>>> len(held_out), tuple(held_out[0].query_x.shape), held_out[0].support_x.dtype
(600, (100, 1), torch.float32)
>>> pooled = SinusoidTasks(pool_size=10, seed=0)
>>> pooled.pool.shape
(10, 2)

References
----------
Finn, C., Abbeel, P. & Levine, S. (2017). Model-agnostic meta-learning for fast adaptation of
deep networks. ICML.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import positive_int
from ..protocol import Task

__all__ = ["SinusoidTasks"]


class SinusoidTasks:
    """A seeded sampler of sinusoid regression tasks.

    Parameters
    ----------
    amplitude, phase, x_range
        The ``(low, high)`` ranges of the uniform distributions of ``A``, ``φ`` and ``x``.
    pool_size
        ``None`` for fresh waves in every task; ``M >= 1`` for a fixed pool of ``M`` waves
        (drawn at construction from ``seed``) that tasks are drawn from.
    seed
        Seed of the pool and of ``sample``'s stream (a private generator; the global RNG is
        never used).
    """

    def __init__(
        self,
        *,
        amplitude: tuple[float, float] = (0.1, 5.0),
        phase: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
        pool_size: int | None = None,
        seed: int = 0,
    ) -> None:
        for name, (low, high) in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"{name} must be a finite (low, high) with low <= high")
        positive_int("pool_size", pool_size, optional=True)
        self.amplitude = (float(amplitude[0]), float(amplitude[1]))
        self.phase = (float(phase[0]), float(phase[1]))
        self.x_range = (float(x_range[0]), float(x_range[1]))
        self.pool_size = pool_size
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        # Two streams from one seed: the pool stays the same however much is sampled.
        pool_seq, sample_seq = np.random.SeedSequence(self.seed).spawn(2)
        self._rng = np.random.default_rng(sample_seq)
        self.pool: np.ndarray | None = (
            None
            if self.pool_size is None
            else self._waves(np.random.default_rng(pool_seq), self.pool_size)
        )
        """The pool's ``(A, φ)`` pairs, shape ``(pool_size, 2)``, or None for fresh tasks."""

    def _waves(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # One (A, φ) row after another, so pools of any size from one seed are nested.
        u = rng.random((n, 2))
        low = np.array([self.amplitude[0], self.phase[0]])
        high = np.array([self.amplitude[1], self.phase[1]])
        return low + (high - low) * u

    def sample(self, batch: int, k_support: int, k_query: int) -> list[Task]:
        """``batch`` tasks with ``k_support`` support and ``k_query`` query points each."""
        positive_int("batch", batch)
        positive_int("k_support", k_support)
        positive_int("k_query", k_query)
        if self.pool is None:
            waves = self._waves(self._rng, batch)
        else:
            waves = self.pool[self._rng.integers(len(self.pool), size=batch)]
        return self._tasks(self._rng, waves, k_support, k_query)

    def evaluation_tasks(
        self, n: int = 600, k_support: int = 10, n_query: int = 100, seed: int = 1_000_003
    ) -> list[Task]:
        """``n`` held-out tasks with fresh waves, depending on ``seed`` only (and the ranges).

        The default seed differs from any small training seed; pass the same ``seed`` to get
        the same tasks for every learner compared.
        """
        positive_int("n", n)
        positive_int("k_support", k_support)
        positive_int("n_query", n_query)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x51E]))
        return self._tasks(rng, self._waves(rng, n), k_support, n_query)

    def _tasks(
        self, rng: np.random.Generator, waves: np.ndarray, k_support: int, k_query: int
    ) -> list[Task]:
        k = k_support + k_query
        x = rng.uniform(*self.x_range, size=(len(waves), k))
        y = waves[:, :1] * np.sin(x - waves[:, 1:])
        xt = torch.from_numpy(x.astype(np.float32)).unsqueeze(-1)
        yt = torch.from_numpy(y.astype(np.float32))
        return [
            Task(xt[i, :k_support], yt[i, :k_support], xt[i, k_support:], yt[i, k_support:])
            for i in range(len(waves))
        ]

    def __repr__(self) -> str:
        return (
            f"SinusoidTasks(amplitude={self.amplitude}, phase={self.phase}, "
            f"x_range={self.x_range}, pool_size={self.pool_size}, seed={self.seed})"
        )
