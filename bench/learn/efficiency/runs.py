"""The efficiency section's run: the meta-learned targets (MAML from the sinusoid section's
weights or trained here), the from-scratch curve over the worker pool, and the ratios where the
curve crosses each target.

Examples
--------
>>> crossing([5, 10, 20, 50], [0.9, 0.5, 0.2, 0.1], target=0.3)
{'n': 20, 'n_interpolated': 15.9}
>>> crossing([5, 10], [0.9, 0.5], target=0.3) is None
True
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch

from adaptd.adapters.fast_weights import task_loss
from adaptd.adapters.tasks.stats import mean_ci95

from .. import sinusoid
from ..harness.parallel import run_parallel
from .protocol import PROTOCOL, QUICK, waves
from .scratch import scratch_curve_point

__all__ = ["crossing", "run"]


def crossing(sizes: list[int], errors: list[float], target: float) -> dict[str, float] | None:
    """The first size whose error is at or below ``target``, and the size where the straight
    line in (log n, error) between it and the previous size meets ``target``; None if none."""
    for i, (n, error) in enumerate(zip(sizes, errors, strict=True)):
        if error <= target:
            if i == 0 or errors[i - 1] == error:
                return {"n": n, "n_interpolated": float(n)}
            t = (errors[i - 1] - target) / (errors[i - 1] - error)
            log_n = math.log(sizes[i - 1]) + t * (math.log(n) - math.log(sizes[i - 1]))
            return {"n": n, "n_interpolated": round(math.exp(log_n), 1)}
    return None


def run(*, quick: bool, seed: int, workers: int | None = None) -> dict[str, Any]:
    """Meta-learned targets, the from-scratch curve and the ratios (see
    :mod:`bench.learn.efficiency`)."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    workers = workers if workers is not None else (1 if quick else 2)
    learners, source = _meta_learners(config, seed, quick, workers)
    _, test = waves({**config, "n": max(config["sizes"])}, seed)
    meta: dict[str, Any] = {}
    for k, learner in learners.items():
        losses, ms, cpu_ms = [], [], []
        for x, y, qx, qy in zip(*test, strict=True):
            start, cpu_start = time.perf_counter(), time.process_time()
            adapted = learner.adapt(x[:k], y[:k], steps=config["adapt_steps"]).params
            ms.append(1000 * (time.perf_counter() - start))
            cpu_ms.append(1000 * (time.process_time() - cpu_start))
            with torch.no_grad():
                losses.append(float(task_loss(learner.net, adapted, qx, qy)))
        mean, half = mean_ci95(losses)
        meta[str(k)] = {
            "mse": {"mean": mean, "half_width": half},
            "adapt_ms": statistics.median(ms),
            "adapt_cpu_ms": statistics.median(cpu_ms),
        }
    jobs = [{**config, "n": n, "seed": seed} for n in sorted(config["sizes"], reverse=True)]
    curve = sorted(run_parallel(scratch_curve_point, jobs, workers), key=lambda p: p["n"])
    sizes, errors = [p["n"] for p in curve], [p["mse"]["mean"] for p in curve]
    ratios = {}
    for k, m in meta.items():
        hit = crossing(sizes, errors, m["mse"]["mean"])
        if hit is None:
            ratios[k] = {"reached": False, "examples_ratio_above": sizes[-1] / int(k)}
            continue
        point = curve[sizes.index(hit["n"])]
        ratios[k] = {
            "reached": True,
            **hit,
            "examples_ratio": hit["n"] / int(k),
            "examples_ratio_interpolated": hit["n_interpolated"] / int(k),
            "scratch_cpu_seconds": point["cpu_seconds"],
            "seconds_ratio": point["cpu_seconds"] / (m["adapt_cpu_ms"] / 1000),
        }
    return {
        "protocol": config,
        "meta_source": source,
        "meta": meta,
        "scratch": curve,
        "ratios": ratios,
        "target_ratio": 10,
    }


def _meta_learners(
    config: dict[str, Any], seed: int, quick: bool, workers: int
) -> tuple[dict[int, Any], str]:
    """MAML per K from the sinusoid section's cache, or trained here."""
    path = sinusoid.cache_path(seed)
    states: dict[int, Any] = {}
    if not quick and path.exists():
        cached = torch.load(path, weights_only=False)
        if cached.get("protocol") == sinusoid.PROTOCOL and cached.get("seed") == seed:
            states = {k: cached["states"][k] for k in config["shots"] if k in cached["states"]}
    if len(states) == len(config["shots"]):
        source = f"the sinusoid section's weights, {sinusoid.PROTOCOL['iterations']} iterations"
    else:
        sizes = {**sinusoid.PROTOCOL, **(sinusoid.QUICK if quick else {})}
        sizes["iterations"] = config["fallback_iterations"]
        sizes["eval_every"] = max(1, config["fallback_iterations"] // 20)
        sizes["test_tasks"] = config["test_tasks"]
        jobs = [{**sizes, "learner": "maml", "shots": k, "seed": seed} for k in config["shots"]]
        states = {
            r["shots"]: r["state"] for r in run_parallel(sinusoid.train_and_test, jobs, workers)
        }
        source = f"trained here, {config['fallback_iterations']} iterations"
    learners = {}
    for k in config["shots"]:
        learners[k] = sinusoid.make_learner("maml", seed)
        learners[k].load_state_dict(states[k])
    return learners, source
