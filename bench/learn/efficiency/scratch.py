"""The from-scratch side of the efficiency section: fresh networks trained with full-batch Adam
until converged, all tasks of one training-set size at once as stacked weights."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
from torch import Tensor

from adaptd.adapters.fast_weights import task_loss
from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.tasks.stats import mean_ci95

from ..sinusoid import make_net
from .protocol import waves

__all__ = ["from_scratch", "scratch_curve_point"]


def from_scratch(
    net: PolicyNet,
    x: Tensor,
    y: Tensor,
    *,
    lr: float,
    seed: int,
    max_steps: int,
    check_every: int,
    tolerance: float,
) -> tuple[dict[str, Tensor], Tensor]:
    """Train one fresh network per task on stacked ``x (T, n, 1)``, ``y (T, n)`` with full-batch
    Adam until each converges (see :mod:`bench.learn.efficiency`); its weights (stacked) and
    steps."""
    n_tasks = x.shape[0]
    inits = [init_params(net, seed + i) for i in range(n_tasks)]
    params = {k: torch.stack([p[k] for p in inits]) for k in inits[0]}
    final = {k: v.clone() for k, v in params.items()}
    stopped = torch.full((n_tasks,), max_steps)
    done = torch.zeros(n_tasks, dtype=torch.bool)
    adam = Adam(lr=lr)
    with torch.no_grad():
        previous = task_loss(net, params, x, y)
    for step in range(1, max_steps + 1):
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        with torch.enable_grad():
            grads = torch.autograd.grad(task_loss(net, leaves, x, y).sum(), list(leaves.values()))
        params = adam.step(params, dict(zip(leaves, grads, strict=True)))
        if step % check_every == 0:
            with torch.no_grad():
                current = task_loss(net, params, x, y)
            newly = ~done & ((previous - current <= tolerance * previous) | (current < 1e-6))
            for k in final:
                final[k][newly] = params[k][newly]
            stopped[newly] = step
            done |= newly
            previous = current
            if bool(done.all()):
                break
    for k in final:
        final[k][~done] = params[k][~done]
    return final, stopped


def scratch_curve_point(job: dict[str, Any]) -> dict[str, Any]:
    """From-scratch figures at one training-set size ``job["n"]`` (a worker job)."""
    n, seed = job["n"], job["seed"]
    net = make_net()
    settings = {k: job[k] for k in ("max_steps", "check_every", "tolerance")}
    val, test = waves(job, seed)

    def query_mse(tasks: tuple[Tensor, ...], lr: float) -> tuple[list[float], list[int]]:
        x, y, qx, qy = tasks
        params, steps = from_scratch(net, x[:, :n], y[:, :n], lr=lr, seed=seed, **settings)
        with torch.no_grad():
            losses = task_loss(net, params, qx, qy)
        return [float(v) if math.isfinite(v) else math.inf for v in losses], steps.tolist()

    scores = {lr: statistics.fmean(query_mse(val, lr)[0]) for lr in job["lrs"]}
    lr = min(scores, key=scores.__getitem__)
    losses, steps = query_mse(test, lr)
    finite = [v for v in losses if math.isfinite(v)]
    mean, half = mean_ci95(finite) if finite else (math.inf, 0.0)
    seconds, cpu = [], []
    for i in range(job["timing_tasks"]):
        one = tuple(part[i : i + 1] for part in test)
        start, cpu_start = time.perf_counter(), time.process_time()
        from_scratch(net, one[0][:, :n], one[1][:, :n], lr=lr, seed=seed, **settings)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {
        "n": n,
        "val_mse_by_lr": {str(k): v for k, v in scores.items()},
        "lr": lr,
        "mse": {"mean": mean, "half_width": half, "n": len(finite)},
        "diverged": len(losses) - len(finite),
        "steps_median": statistics.median(steps),
        "capped": sum(s >= job["max_steps"] for s in steps),
        "seconds": statistics.median(seconds),
        "cpu_seconds": statistics.median(cpu),
    }
