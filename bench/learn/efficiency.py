"""Learning efficiency on sinusoid regression: examples and wall time that training from scratch
needs to reach the error a meta-learned model reaches after K = 5 and K = 10 examples.

- **Meta-learned**: MAML on the ``sinusoid`` section's protocol. A full run of that section
  leaves its selected MAML weights per K in :func:`~bench.learn.sinusoid.cache_path`;
  they are used when their protocol and seed match, otherwise MAML is trained here with
  ``fallback_iterations`` meta-iterations (the result says which). On each of ``test_tasks``
  held-out waves (own seed), it adapts on K points with ``adapt_steps`` steps of 0.01; the
  target is the mean query MSE, and its wall time the median time of one ``adapt``.
- **From scratch**: the same ``PolicyNet(1, (40, 40), "relu")``, freshly initialised per task,
  trained on the first ``n`` points of the same waves (nested training sets, ``n`` in
  ``sizes``) with full-batch Adam until converged: the training MSE fell by less than
  ``tolerance`` (relative) over ``check_every`` steps, or ``max_steps``. Adam's step size is
  chosen per ``n`` from ``lrs`` by the query MSE on ``val_tasks`` other waves (never the test
  waves). The tasks of one ``n`` train at once as stacked weights (independent per task, as
  Adam is element-wise); the wall time is measured separately on single tasks.

The smallest ``n`` whose mean query MSE is at or below the target gives the example ratio
``n / K`` (with a log-linear interpolation between the two grid sizes around the crossing) and
the time ratio (from-scratch training seconds over adaptation seconds, both CPU time of one
thread, which is the wall time on an idle core and does not depend on the machine's load;
meta-training time is not amortised). The design's target is 10x.

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
from torch import Tensor

from adaptd.adapters.fast_weights import task_loss
from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.tasks import SinusoidTasks
from adaptd.adapters.tasks.stats import mean_ci95

from . import sinusoid
from .harness.parallel import run_parallel

__all__ = ["PROTOCOL", "crossing", "from_scratch", "run", "scratch_curve_point", "summary"]

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
    Adam until each converges (see the module docstring); its weights (stacked) and steps."""
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
    net = _net()
    settings = {k: job[k] for k in ("max_steps", "check_every", "tolerance")}
    val, test = _waves(job, seed)

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
    """Meta-learned targets, the from-scratch curve and the ratios (module docstring)."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    workers = workers if workers is not None else (1 if quick else 2)
    learners, source = _meta_learners(config, seed, quick, workers)
    _, test = _waves({**config, "n": max(config["sizes"])}, seed)
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


def summary(result: dict[str, Any]) -> str:
    """Markdown: the targets, the from-scratch curve and the ratios against 10x."""
    p, source = result["protocol"], result["meta_source"]
    lines = [
        f'Sinusoid tasks, `PolicyNet(1, (40, 40), "relu")`. Meta-learned: MAML ({source}), '
        f"{p['adapt_steps']} steps of 0.01 on K points. From scratch: full-batch Adam until "
        f"the training MSE falls by less than {100 * p['tolerance']:.0f} % in "
        f"{p['check_every']} steps (at most {p['max_steps']}), step size per n from "
        f"{p['lrs']} on {p['val_tasks']} validation waves. Query MSE over {p['test_tasks']} "
        f"held-out waves, {p['query_points']} query points each, ± 95 % CI.",
        "",
        "| K | meta-learned MSE | adaptation CPU ms (wall) |",
        "|---:|---:|---:|",
    ]
    for k, m in result["meta"].items():
        lines.append(f"| {k} | {_cell(m['mse'])} | {m['adapt_cpu_ms']:.2f} ({m['adapt_ms']:.2f}) |")
    lines += [
        "",
        "| n (from scratch) | MSE | Adam lr | median steps | capped | CPU s, one task (wall) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for point in result["scratch"]:
        lines.append(
            f"| {point['n']} | {_cell(point['mse'])} | {point['lr']:g} | "
            f"{point['steps_median']:.0f} | {point['capped']} | {point['cpu_seconds']:.2f} "
            f"({point['seconds']:.2f}) |"
        )
    lines += [
        "",
        "| K | examples from scratch | ratio | time ratio | 10x target |",
        "|---:|---:|---:|---:|---|",
    ]
    for k, r in result["ratios"].items():
        if not r["reached"]:
            lines.append(
                f"| {k} | never within n = {result['scratch'][-1]['n']} | "
                f"> {r['examples_ratio_above']:.0f}x | | met |"
            )
            continue
        met = "met" if r["examples_ratio"] >= result["target_ratio"] else "not met"
        lines.append(
            f"| {k} | {r['n']} (interpolated {r['n_interpolated']:g}) | "
            f"{r['examples_ratio']:.0f}x ({r['examples_ratio_interpolated']:.1f}x) | "
            f"{r['seconds_ratio']:.0f}x | {met} |"
        )
    return "\n".join(lines)


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


def _waves(config: dict[str, Any], seed: int) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
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


def _net() -> PolicyNet:
    p = sinusoid.PROTOCOL
    return PolicyNet(1, tuple(p["hidden"]), activation=p["activation"])


def _cell(figures: dict[str, float]) -> str:
    return f"{figures['mean']:.3f} ± {figures['half_width']:.3f}"
