"""The policy section's run: every algorithm meta-trained with checkpoint selection and tested
against no adaptation, scratch and the zero forecast; the best on validation tuned and tested
again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptd.adapters.fast_weights import adapt, mse
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks.stats import mean_ci95

from ..harness.parallel import run_parallel
from .protocol import (
    ALGORITHMS,
    SPLIT,
    daemon_settings,
    policy_learner,
    policy_net,
    splits,
    tuned_overrides,
)

__all__ = ["run"]


def _query_errors(
    learner: Any, net: PolicyNet, tasks: Sequence[Task], settings: Any
) -> dict[str, np.ndarray]:
    """Per-task query MSE: adapted, the initialisation unadapted, scratch, zero forecast."""
    scratch = init_params(net, settings.seed + 1)
    out: dict[str, list[float]] = {"adapted": [], "no_adaptation": [], "scratch": [], "zero": []}
    for t in tasks:
        adapted = learner.adapt(t.support_x, t.support_y).params
        from_scratch = adapt(
            net,
            scratch,
            t.support_x,
            t.support_y,
            steps=settings.inner_steps,
            lr=settings.inner_lr,
        ).params
        with torch.no_grad():
            out["adapted"].append(float(mse(net, adapted, t.query_x, t.query_y)))
            out["no_adaptation"].append(float(mse(net, learner.params, t.query_x, t.query_y)))
            out["scratch"].append(float(mse(net, from_scratch, t.query_x, t.query_y)))
            out["zero"].append(float(torch.mean(t.query_y**2)))
    return {k: np.asarray(v) for k, v in out.items()}


def _estimate(values: np.ndarray) -> dict[str, float]:
    mean, half = mean_ci95(values.tolist())
    return {"mean": mean, "ci95": half}


def _one(
    algorithm: str, quick: bool, seed: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    torch.set_num_threads(1)
    settings = daemon_settings(algorithm, overrides)
    train, val, test = splits(quick)
    net = policy_net()
    learner = policy_learner(algorithm, net, overrides)
    rng = np.random.default_rng(seed)
    iterations = 40 if quick else 3000
    eval_every = 20 if quick else 250
    best, best_state, curve = np.inf, learner.state_dict(), []
    meta_ms = []
    for it in range(iterations + 1):
        if it % eval_every == 0:
            val_err = float(_query_errors(learner, net, val, settings)["adapted"].mean())
            curve.append((it, val_err))
            if val_err < best:
                best, best_state = val_err, learner.state_dict()
        if it == iterations:
            break
        batch = [train[i] for i in rng.choice(len(train), settings.meta_batch, replace=False)]
        start = time.perf_counter()
        learner.meta_update(batch)
        meta_ms.append((time.perf_counter() - start) * 1000)
    learner.load_state_dict(best_state)  # the checkpoint chosen on validation
    errors = _query_errors(learner, net, test, settings)
    latency = []
    for t in test[: 200 if not quick else 10]:
        start = time.perf_counter()
        learner.adapt(t.support_x, t.support_y)
        latency.append((time.perf_counter() - start) * 1000)
    return {
        "algorithm": algorithm,
        "settings": {
            "inner_lr": settings.inner_lr,
            "inner_steps": settings.inner_steps,
            "meta_lr": settings.meta_lr if algorithm == "reptile" else settings.adam_lr,
        },
        "validation_adapted_mse": best,
        "best_iteration": curve[int(np.argmin([v for _, v in curve]))][0],
        "curve": curve,
        "test": {k: _estimate(v) for k, v in errors.items()},
        "test_gain_vs_no_adaptation": _estimate(errors["no_adaptation"] - errors["adapted"]),
        "test_gain_vs_scratch": _estimate(errors["scratch"] - errors["adapted"]),
        "test_gain_vs_zero": _estimate(errors["zero"] - errors["adapted"]),
        "meta_update_ms_median": float(np.median(meta_ms)),
        "adapt_ms_p50": float(np.percentile(latency, 50)),
        "adapt_ms_p99": float(np.percentile(latency, 99)),
        "tasks": {"train": len(train), "validation": len(val), "test": len(test)},
        "iterations": iterations,
        "eval_every": eval_every,
    }


def _one_job(job: tuple[str, bool, int]) -> dict[str, Any]:
    return _one(*job)


def _tune(algorithm: str, quick: bool, seed: int) -> dict[str, Any]:
    """Successive halving over inner step size, inner steps and meta step size, judged on the
    validation tasks only (``adaptd.adapters.tasks.tuning``)."""
    from adaptd.adapters.tasks.tuning import SearchSpace, tune

    torch.set_num_threads(1)
    train, val, _ = splits(quick)
    net = policy_net()
    meta_batch = daemon_settings(algorithm).meta_batch

    def factory(inner_lr: float, inner_steps: int, meta_lr: float) -> Any:
        return policy_learner(
            algorithm, net, tuned_overrides(algorithm, inner_lr, inner_steps, meta_lr)
        )

    def make_sampler(data_seed: int) -> Any:
        rng = np.random.default_rng(data_seed)
        return lambda: [train[i] for i in rng.choice(len(train), meta_batch, replace=False)]

    outer = (0.01, 0.5) if algorithm == "reptile" else (1e-4, 3e-2)
    space = SearchSpace(inner_lr=(0.005, 0.5), inner_steps=(1, 10), meta_lr=outer)
    result = tune(
        factory,
        make_sampler,
        val,
        iterations=10 if quick else 250,
        trials=3 if quick else 9,
        space=space,
        method="halving",
        seed=seed,
        data_seed=seed,
    )
    best = result.best
    return {
        "best": {
            "inner_lr": best.inner_lr,
            "inner_steps": best.inner_steps,
            "meta_lr": best.meta_lr,
        },
        "best_validation": float(result.best_value),
        "trials": len(result.trials),
    }


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Meta-train and evaluate every algorithm with the daemon's defaults (two worker
    processes unless quick), pick the one with the lowest validation error, tune its
    hyperparameters on validation, and evaluate the tuned configuration on test."""
    rows = run_parallel(_one_job, [(a, quick, seed) for a in ALGORITHMS], 1 if quick else 2)
    chosen = min(rows, key=lambda r: r["validation_adapted_mse"])["algorithm"]
    tuning = _tune(chosen, quick, seed)
    b = tuning["best"]
    tuned = _one(
        chosen, quick, seed, tuned_overrides(chosen, b["inner_lr"], b["inner_steps"], b["meta_lr"])
    )
    return {
        "rows": rows,
        "chosen_on_validation": chosen,
        "tuning": tuning,
        "tuned": tuned,
        "split": list(SPLIT),
    }
