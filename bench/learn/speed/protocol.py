"""The speed section's protocol: the MAML sinusoid sizes, the implementations compared and
their meta-batches (see :mod:`bench.learn.speed`).

Examples
--------
>>> batch = sinusoid_batch(torch.Generator().manual_seed(0), tasks=2, shots=3, queries=4)
>>> [tuple(part.shape) for part in batch]
[(2, 3, 1), (2, 3), (2, 4, 1), (2, 4)]
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .baselines import Batch

__all__ = ["IMPLEMENTATIONS", "LABELS", "PROTOCOL", "sinusoid_batch"]

PROTOCOL: dict[str, Any] = {
    "tasks": 25,
    "shots": 10,
    "queries": 10,
    "hidden": [40, 40],
    "activation": "relu",
    "inner_lr": 0.01,
    "meta_lr": 1e-3,
    "inner_steps": [1, 5],
    "daemon_shots": [5, 20, 50],
    "daemon_steps": 5,
}
IMPLEMENTATIONS = ("ours", "ours_func", "loop", "learn2learn", "hand_batched")
LABELS = {
    "ours": "ours: `meta.MAML` (autograd)",
    "ours_func": "ours: `meta.MAML` (func, vmap)",
    "loop": "per-task PyTorch loop",
    "learn2learn": "learn2learn `MAML`",
    "hand_batched": "hand-batched (`baddbmm`)",
}


def sinusoid_batch(generator: torch.Generator, *, tasks: int, shots: int, queries: int) -> Batch:
    """A meta-batch of sinusoid tasks, ``y = A sin(x - φ)``, stacked per task."""
    amplitude = 0.1 + 4.9 * torch.rand(tasks, 1, generator=generator)
    phase = math.pi * torch.rand(tasks, 1, generator=generator)
    x = 10.0 * torch.rand(tasks, shots + queries, generator=generator) - 5.0
    y = amplitude * torch.sin(x - phase)
    x = x.unsqueeze(-1)
    return x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:]
