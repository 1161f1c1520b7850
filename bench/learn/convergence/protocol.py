"""The convergence protocol: MAML on sinusoids, the pool sizes, the run sizes and the seeds of
the held-out waves (see :mod:`bench.learn.convergence`).

Examples
--------
>>> QUICK["pools"], PROTOCOL["tolerance"]
([10, 30], 0.1)
"""

from __future__ import annotations

from typing import Any

__all__ = ["BOOTSTRAP", "DIVERGED", "FULL", "PROTOCOL", "QUICK", "TEST_SEED", "VAL_SEED"]

PROTOCOL: dict[str, Any] = {
    "shots": 10,
    "meta_batch": 25,
    "hidden": [40, 40],
    "activation": "relu",
    "inner_steps": 1,
    "inner_lr": 0.01,
    "meta_lr": 1e-3,
    "eval_steps": [1, 10],
    "test_queries": 100,
    "tolerance": 0.10,
    "target": 100,
}
TEST_SEED = 1_000_003
VAL_SEED = 2_000_029
FULL: dict[str, Any] = {
    "pools": [10, 30, 100, 300, 1000],
    "iterations": 20_000,
    "eval_every": 500,
    "seeds": 2,
    "test_tasks": 600,
    "val_tasks": 200,
    "workers": 2,
}
QUICK: dict[str, Any] = {
    "pools": [10, 30],
    "iterations": 30,
    "eval_every": 10,
    "seeds": 1,
    "test_tasks": 40,
    "val_tasks": 20,
    "workers": 0,
}
BOOTSTRAP = 2000
DIVERGED = 100.0
"""A task's MSE above this counts as diverged: predicting 0 scores ``A² / 2 <= 12.5``."""
