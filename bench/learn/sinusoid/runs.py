"""The sinusoid section's run: every (learner, K) over the worker pool, MAML's weights kept for
the ``efficiency`` section, and the checks against the reference figures.

Examples
--------
>>> [passes({"mean": mean, "half_width": 0.02}, 0.31) for mean in (0.30, 0.33, 0.36)]
[True, True, False]
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..harness.parallel import run_parallel
from .protocol import FINE_TUNE_LRS, LEARNERS, PROTOCOL, QUICK, REFERENCES, REPTILE, cache_path
from .training import train_and_test

__all__ = ["passes", "run"]

# Relative cost of a job (MAML = 1), so the pool starts the longest first.
_COST = {"reptile": 4.0, "metasgd": 1.6, "fomaml": 1.1, "maml": 1.0, "anil": 0.9}


def run(*, quick: bool, seed: int, workers: int | None = None) -> dict[str, Any]:
    """Train and test every learner at every K (see :mod:`bench.learn.sinusoid`)."""
    sizes = {**PROTOCOL, **(QUICK if quick else {})}
    workers = workers if workers is not None else (1 if quick else 2)
    jobs = [
        {**sizes, "learner": name, "shots": k, "seed": seed}
        for name in LEARNERS
        for k in sizes["shots"]
    ]
    jobs.sort(key=lambda j: -_COST.get(j["learner"], 0.5) * (1 + j["shots"] / 20))
    start = time.perf_counter()
    results = run_parallel(train_and_test, jobs, workers)
    wall = time.perf_counter() - start
    states = {r["shots"]: r.pop("state") for r in results if "state" in r}
    if not quick:
        path = cache_path(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"protocol": PROTOCOL, "seed": seed, "states": states}, path)
    results.sort(key=lambda r: (r["shots"], LEARNERS.index(r["learner"])))
    return {
        "protocol": sizes,
        "reptile": REPTILE,
        "fine_tune_lrs": list(FINE_TUNE_LRS),
        "workers": workers,
        "wall_seconds": wall,
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
        "runs": results,
        "checks": _checks(results),
    }


def passes(estimate: dict[str, float], reference: float) -> bool:
    """ "At least as good within the CI": the interval's lower end is at or below ``reference``."""
    return estimate["mean"] - estimate["half_width"] <= reference


def _checks(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {(r["learner"], r["shots"]): r for r in results}
    checks = []
    for (name, k), refs in REFERENCES.items():
        if (name, k) in by_key:
            for steps, reference in refs.items():
                est = by_key[name, k]["mse"][str(steps)]
                checks.append(
                    {
                        "check": f"{name}, K = {k}, {steps} step(s)",
                        "reference": reference,
                        **est,
                        "pass": passes(est, reference),
                    }
                )
    for (name, k), r in sorted(by_key.items(), key=lambda item: item[0][1]):
        if name == "metasgd" and ("maml", k) in by_key:
            reference = by_key["maml", k]["mse"]["1"]["mean"]
            est = r["mse"]["1"]
            checks.append(
                {
                    "check": f"metasgd below maml, K = {k}, 1 step",
                    "reference": reference,
                    **est,
                    "pass": passes(est, reference),
                }
            )
    return checks
