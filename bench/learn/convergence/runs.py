"""The convergence section's run: every pool size and fresh tasks for every seed over the worker
pool, then the test errors, their ratios to fresh tasks with bootstrap intervals, the smallest
pool within the tolerance and the fresh-task validation curve.

Examples
--------
>>> smallest_within([10, 30, 100], [1.5, 1.2, 1.05], tolerance=0.1)
{'m': 66.9, 'interpolated': True, 'between': [30, 100]}
>>> smallest_within([10, 30], [1.02, 1.08], tolerance=0.1)
{'m': 10.0, 'interpolated': False, 'between': None}
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptd.adapters.checks import is_int, non_negative_int, positive_int
from adaptd.adapters.tasks.stats import Estimate

from ..harness.parallel import run_parallel
from .protocol import BOOTSTRAP, DIVERGED, FULL, PROTOCOL, QUICK, TEST_SEED, VAL_SEED
from .training import train

__all__ = ["measure", "run", "smallest_within"]


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """The benchmark at full size or as a smoke test (seconds); see
    :mod:`bench.learn.convergence`.

    Full size is 12 runs of 20000 meta-iterations, about 60 s of CPU each: 9 min of wall on
    2 workers on the shared 2-core machine at load 4, 20 min at load 10.
    """
    return measure(seed=seed, **(QUICK if quick else FULL))


def measure(
    *,
    seed: int,
    pools: Sequence[int],
    iterations: int,
    eval_every: int,
    seeds: int,
    test_tasks: int,
    val_tasks: int,
    workers: int,
) -> dict[str, Any]:
    """Train every pool size and fresh tasks for seeds ``seed .. seed + seeds - 1``.

    ``workers`` 0 or 1 runs in this process; otherwise a spawned pool of ``workers`` processes.
    """
    sizes = {
        "iterations": iterations,
        "eval_every": eval_every,
        "test_tasks": test_tasks,
        "val_tasks": val_tasks,
    }
    for name, value in {**sizes, "seeds": seeds}.items():
        positive_int(name, value)
    non_negative_int("workers", workers)
    if not pools or not all(is_int(m) and m >= 1 for m in pools):
        raise ValueError(f"pools must be positive integers, got {list(pools)!r}")
    pools = sorted(set(pools))
    jobs = [
        {"pool": m, "seed": s, **sizes} for s in range(seed, seed + seeds) for m in [*pools, None]
    ]
    start = time.perf_counter()
    outputs = run_parallel(train, jobs, max(1, workers))
    wall = time.perf_counter() - start
    return _aggregate(pools, jobs, outputs, wall, workers, iterations, eval_every)


def smallest_within(
    pools: Sequence[int], ratios: Sequence[float], tolerance: float = 0.10
) -> dict[str, Any]:
    """The smallest pool size from which every larger pool is within ``tolerance`` of fresh.

    ``ratios[i]`` is pool ``pools[i]``'s error over the fresh-task error (pools ascending).
    Between the last pool outside and the first inside, the crossing of ``1 + tolerance`` is
    interpolated linearly on ``log M`` (``interpolated`` True, ``between`` the two sizes).
    ``m`` is None when even the largest pool is outside.
    """
    if len(pools) != len(ratios) or not pools:
        raise ValueError("pools and ratios must be non-empty and of the same length")
    if list(pools) != sorted(pools):
        raise ValueError(f"pools must be ascending, got {list(pools)}")
    limit = 1.0 + tolerance
    first = len(pools)
    while first > 0 and ratios[first - 1] <= limit:
        first -= 1
    if first == len(pools):
        return {"m": None, "interpolated": False, "between": None}
    if first == 0:
        return {"m": float(pools[0]), "interpolated": False, "between": None}
    lo, hi = math.log(pools[first - 1]), math.log(pools[first])
    r_lo, r_hi = ratios[first - 1], ratios[first]
    m = math.exp(lo + (r_lo - limit) / (r_lo - r_hi) * (hi - lo))
    return {"m": round(m, 1), "interpolated": True, "between": [pools[first - 1], pools[first]]}


def _aggregate(
    pools: list[int],
    jobs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    wall: float,
    workers: int,
    iterations: int,
    eval_every: int,
) -> dict[str, Any]:
    steps_list = [str(s) for s in PROTOCOL["eval_steps"]]
    by_condition: dict[int | None, list[dict[str, Any]]] = {}
    for out in outputs:
        by_condition.setdefault(out["pool"], []).append(out)
    errors = {
        m: {s: np.mean([o["test"][s] for o in runs], axis=0) for s in steps_list}
        for m, runs in by_condition.items()
    }
    rng = np.random.default_rng(jobs[0]["seed"])
    n_tasks = len(errors[None][steps_list[0]])
    resamples = rng.integers(n_tasks, size=(BOOTSTRAP, n_tasks))
    rows = []
    for m in [*pools, None]:
        runs = by_condition[m]
        test, ratio = {}, {}
        for s in steps_list:
            estimate = Estimate.of(errors[m][s])
            test[s] = {
                "mean": estimate.mean,
                "ci": estimate.half_width,
                "per_seed": [float(np.mean(o["test"][s])) for o in runs],
                "median": float(np.median(errors[m][s])),
                "diverged": int((errors[m][s] > DIVERGED).sum()),
            }
            fresh = errors[None][s]
            boot = errors[m][s][resamples].mean(axis=1) / fresh[resamples].mean(axis=1)
            low, high = np.percentile(boot, [2.5, 97.5])
            ratio[s] = {
                "value": float(errors[m][s].mean() / fresh.mean()),
                "low": float(low),
                "high": float(high),
            }
        row: dict[str, Any] = {
            "pool": m,
            "label": "fresh every task" if m is None else str(m),
            "test": test,
            "ratio": ratio,
            "best_steps": [o["best_step"] for o in runs],
        }
        if m is not None:
            row["pool_error_1"] = float(np.mean([o["pool_error_1"] for o in runs]))
        rows.append(row)
    within = {
        s: smallest_within(
            pools, [row["ratio"][s]["value"] for row in rows[:-1]], PROTOCOL["tolerance"]
        )
        for s in steps_list
    }
    fresh_runs = by_condition[None]
    values = np.mean([o["val_values"] for o in fresh_runs], axis=0)
    seconds = [o["seconds"] for o in outputs]
    cpu = [o["cpu_seconds"] for o in outputs]
    return {
        "protocol": PROTOCOL,
        "iterations": iterations,
        "eval_every": eval_every,
        "seeds": sorted({o["seed"] for o in outputs}),
        "test_tasks": n_tasks,
        "val_tasks": jobs[0]["val_tasks"],
        "test_seed": TEST_SEED,
        "val_seed": VAL_SEED,
        "pools": pools,
        "rows": rows,
        "smallest_within": within,
        "fresh_curve": {
            "steps": fresh_runs[0]["val_steps"],
            "values": values.tolist(),
            "last_half_drop": _drop(values, 0.5),
            "last_quarter_drop": _drop(values, 0.75),
        },
        "curves": {
            ("fresh" if m is None else str(m)): [o["val_values"] for o in runs]
            for m, runs in by_condition.items()
        },
        "run_seconds": seconds,
        "ms_per_iteration": 1e3 * float(np.median(seconds)) / iterations,
        "cpu_ms_per_iteration": 1e3 * float(np.median(cpu)) / iterations,
        "workers": workers,
        "wall_seconds": wall,
    }


def _drop(values: np.ndarray, fraction: float) -> float:
    """Relative fall of the best value so far from ``fraction`` of the curve to its end."""
    best = np.minimum.accumulate(values)
    at = best[min(len(best) - 1, round(fraction * (len(best) - 1)))]
    return float((at - best[-1]) / at) if at > 0 else 0.0
