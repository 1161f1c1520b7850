"""One (learner, K) of the sinusoid section: meta-training with checkpoint selection on
validation waves, then the test (see :mod:`bench.learn.sinusoid`)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from adaptd.adapters.tasks import EarlyStopping, SinusoidTasks, meta_train, query_loss
from adaptd.adapters.tasks.stats import mean_ci95

from .pretrained import JointRegression
from .protocol import FINE_TUNE_LRS, PROTOCOL, REPTILE, make_learner

__all__ = ["last_half_gain", "test_mse", "train_and_test"]


def train_and_test(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (learner, K) with validation and checkpoint selection, then test it.

    ``job`` holds ``learner``, ``shots``, ``seed`` and the sizes of :data:`PROTOCOL`
    (``iterations``, ``eval_every``, ``patience``, ``val_tasks``, ``test_tasks``,
    ``query_points``, ``eval_steps``). Returns JSON-able figures plus ``state`` (the selected
    ``state_dict``, tensors) for MAML.
    """
    name, shots, seed = job["learner"], job["shots"], job["seed"]
    cpu_start = time.process_time()
    learner = make_learner(name, seed)
    source = SinusoidTasks(seed=seed)
    held_out = SinusoidTasks()
    val = held_out.evaluation_tasks(
        job["val_tasks"], shots, job["query_points"], seed=PROTOCOL["val_seed"] + seed
    )
    iterations, eval_every = job["iterations"], job["eval_every"]
    if name == "reptile":
        share = REPTILE["iteration_share"]
        iterations, eval_every = (max(1, round(n * share)) for n in (iterations, eval_every))

    def sample() -> list:
        if name == "reptile":  # the Reptile authors' linear annealing of the outer step
            learner.meta_lr = REPTILE["outer_lr"] * (1.0 - learner.updates / iterations)
        return source.sample(PROTOCOL["meta_batch"], shots, shots)

    history = meta_train(
        learner,
        sample,
        val,
        iterations=iterations,
        eval_every=eval_every,
        evaluate=lambda lrn, tasks: _finite_mean(lrn, tasks, lrn.inner_steps),
        stopper=EarlyStopping(patience=job["patience"]),
    )
    test = held_out.evaluation_tasks(
        job["test_tasks"], shots, job["query_points"], seed=PROTOCOL["test_seed"] + seed
    )
    start = time.perf_counter()
    mse = {str(s): test_mse(learner, test, s) for s in job["eval_steps"]}
    result: dict[str, Any] = {
        "learner": name,
        "shots": shots,
        "iterations": history.iterations,
        "best_iteration": history.best_step,
        "stopped_early": history.stopped_early,
        "train_seconds": history.seconds,
        "test_seconds": time.perf_counter() - start,
        "inner_lr": learner.inner_lr,
        "val_curve": {"steps": history.val_steps, "mse": history.val_values},
        "last_half_gain": last_half_gain(history.val_steps, history.val_values),
        "mse": mse,
    }
    if name == "pretrained":
        result["tuned"] = _tuned_fine_tuning(learner, val, test, job["eval_steps"])
    if name == "metasgd":
        alphas = torch.cat([a.flatten() for a in learner.alpha.values()])
        result["step_sizes"] = {
            k: float(f(alphas))
            for k, f in (("min", torch.min), ("median", torch.median), ("max", torch.max))
        }
    if name == "maml":
        result["state"] = learner.state_dict()
    # CPU time is what the job costs on an idle core; wall time depends on the machine's load.
    result["cpu_seconds"] = time.process_time() - cpu_start
    return result


def test_mse(learner: Any, tasks: list, steps: int) -> dict[str, float]:
    """Query MSE after ``steps`` inner steps: mean and 95 % half-width over the tasks whose
    adaptation stayed finite, and how many ``diverged`` (e.g. learned step sizes taken further
    than the one step they were trained for)."""
    losses = [
        query_loss(
            learner,
            learner.params
            if steps == 0
            else learner.adapt(task.support_x, task.support_y, steps=steps).params,
            task.query_x,
            task.query_y,
        )
        for task in tasks
    ]
    finite = [v for v in losses if math.isfinite(v)]
    mean, half = mean_ci95(finite) if finite else (math.nan, math.nan)
    return {
        "mean": mean,
        "half_width": half,
        "n": len(finite),
        "diverged": len(tasks) - len(finite),
    }


def last_half_gain(steps: list[int], values: list[float]) -> float | None:
    """Relative improvement of the best validation value over the second half of training:
    ``(best of the first half − best overall) / best of the first half``; ~0 means converged.

    >>> round(last_half_gain([0, 5, 10], [1.0, 0.5, 0.4]), 6)
    0.2
    """
    if len(steps) < 2:
        return None
    half = steps[-1] / 2
    first = min(v for s, v in zip(steps, values, strict=True) if s <= half)
    return (first - min(values)) / first if first > 0 else 0.0


def _tuned_fine_tuning(
    learner: JointRegression, val: list, test: list, eval_steps: list[int]
) -> dict[str, Any]:
    """Per number of steps: the fine-tuning step size best on ``val``, and its test figures."""
    saved = learner.inner_lr
    out: dict[str, Any] = {}
    try:
        for steps in (s for s in eval_steps if s > 0):
            scores = {}
            for lr in FINE_TUNE_LRS:
                learner.inner_lr = lr
                scores[lr] = _finite_mean(learner, val, steps)
            best = min(scores, key=scores.__getitem__)
            learner.inner_lr = best
            out[str(steps)] = {**test_mse(learner, test, steps), "lr": best}
    finally:
        learner.inner_lr = saved
    return out


def _finite_mean(learner: Any, tasks: list, steps: int) -> float:
    """Mean query MSE, or infinity when any task diverged (never the best for selection)."""
    figures = test_mse(learner, tasks, steps)
    return math.inf if figures["diverged"] else figures["mean"]
