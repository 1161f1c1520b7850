"""The efficiency protocol: sizes of both sides, and the held-out waves they share (see
:mod:`bench.learn.efficiency`).

Examples
--------
>>> val, test = waves({**PROTOCOL, **QUICK}, seed=0)
>>> [tuple(part.shape) for part in test]
[(4, 20, 1), (4, 20), (4, 20, 1), (4, 20)]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from adaptd.adapters.tasks import SinusoidTasks

__all__ = ["PROTOCOL", "QUICK", "waves"]

PROTOCOL: dict[str, Any] = {
    "shots": [5, 10],
    "adapt_steps": 10,
    "test_tasks": 40,
    "val_tasks": 6,
    "query_points": 200,
    "sizes": [5, 10, 20, 50, 100, 200, 500, 1000],
    "lrs": [3e-3, 1e-2, 3e-2],
    "max_steps": 2000,
    "check_every": 100,
    "tolerance": 0.01,
    "timing_tasks": 3,
    "fallback_iterations": 4000,
    "test_seed": 3_000_003,
    "val_seed": 4_000_003,
}
QUICK: dict[str, Any] = {
    "test_tasks": 4,
    "val_tasks": 2,
    "query_points": 20,
    "sizes": [5, 20],
    "lrs": [1e-2, 3e-2],
    "max_steps": 40,
    "check_every": 10,
    "timing_tasks": 1,
    "fallback_iterations": 4,
}


def waves(config: dict[str, Any], seed: int) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Validation and test waves, each as stacked ``(x, y, query_x, query_y)`` with
    ``max(sizes)`` training points (the first ``n`` are the training set of size ``n``)."""
    held_out = SinusoidTasks()
    out = []
    for count, base in (
        (config["val_tasks"], config["val_seed"]),
        (config["test_tasks"], config["test_seed"]),
    ):
        tasks = held_out.evaluation_tasks(
            count, max(config["sizes"]), config["query_points"], seed=base + seed
        )
        out.append(tuple(torch.stack([t[i] for t in tasks]) for i in range(4)))
    return out[0], out[1]
