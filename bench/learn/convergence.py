"""Convergence benchmark: how many distinct meta-training tasks MAML needs.

On the MAML sinusoid protocol (K = 10 support + 10 query points, meta-batch 25,
``PolicyNet(1, (40, 40), activation="relu")``, one inner step of 0.01, Adam 1e-3;
:class:`adaptd.adapters.meta.MAML`), meta-train with a fixed pool of ``M`` waves
(:class:`adaptd.adapters.tasks.SinusoidTasks` with ``pool_size=M``: pools of one seed are
nested, every task has fresh inputs ``x``) and with fresh waves in every task, for the same
number of meta-iterations and from the same initialisation (per seed). Then:

- **checkpoint selection** on held-out validation waves (their own seed, never the test
  waves): every ``eval_every`` iterations the mean query MSE after one step on the validation
  tasks is recorded and the best checkpoint is kept (``meta_train`` with a stopper that never
  stops, so every ``M`` gets the same iterations);
- **test** on the 600 held-out tasks (100 query points each, the same tasks for every run):
  MSE after 1 and 10 steps, averaged over seeds per task, with a 95 % interval over tasks;
- **ratio** of each pool's test error to the fresh-task error, with a paired bootstrap 95 %
  interval over test tasks (the runs share their test tasks);
- **the smallest M within 10 %** of fresh tasks (:func:`smallest_within`), interpolated on
  ``log M`` when it falls between two pool sizes;
- the fresh-task **validation curve**, to show how converged training is at that count.

Runs (one per pool size and seed) go to a ``multiprocessing`` pool of spawned workers, each
with one torch thread. Evaluation adapts all tasks at once (:func:`adapted_errors`), the same
maths as ``learner.adapt`` task by task.

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
from adaptd.adapters.meta import MAML
from adaptd.adapters.meta.batched import adapt_tasks, task_losses
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import EarlyStopping, SinusoidTasks, meta_train
from adaptd.adapters.tasks.stats import Estimate

from .harness.parallel import run_parallel

__all__ = ["PROTOCOL", "adapted_errors", "measure", "run", "smallest_within", "summary"]

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


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """The benchmark at full size or as a smoke test (seconds).

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
    outputs = run_parallel(_train, jobs, max(1, workers))
    wall = time.perf_counter() - start
    return _aggregate(pools, jobs, outputs, wall, workers, iterations, eval_every)


def adapted_errors(learner: MAML, tasks: Sequence[Task], steps: int) -> np.ndarray:
    """Each task's query MSE after ``steps`` inner steps from ``learner.params``, all tasks in
    one batched inner loop (``steps=0``: the initialisation itself)."""
    non_negative_int("steps", steps)
    if not tasks:
        raise ValueError("tasks is empty")
    xs, ys, qxs, qys = (list(column) for column in zip(*tasks, strict=True))
    params = adapt_tasks(
        learner.net,
        learner.params,
        xs,
        ys,
        steps=steps,
        lr=learner.inner_lr,
        backend="autograd",
        loss=learner.loss,
    )
    return task_losses(learner.net, params, qxs, qys, learner.loss).double().numpy()


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


def summary(result: dict[str, Any]) -> str:
    """Markdown: the table per pool size, the smallest M within tolerance, the fresh curve."""
    p = result["protocol"]
    tol = round(100 * p["tolerance"])
    lines = [
        f"MAML ({p['inner_steps']} inner step of {p['inner_lr']}, Adam {p['meta_lr']}) on the "
        f"sinusoid protocol, K = {p['shots']}, meta-batch {p['meta_batch']}, 1-"
        f"{'-'.join(map(str, p['hidden']))}-1 {p['activation']}; {result['iterations']} "
        f"meta-iterations for every pool size, seeds {result['seeds']} (pools drawn per seed). "
        f"Checkpoint chosen every {result['eval_every']} iterations on {result['val_tasks']} "
        f"validation waves (1-step MSE; own seed); test: {result['test_tasks']} held-out tasks, "
        f"{p['test_queries']} query points, per-task MSE averaged over seeds, 95 % CI over "
        "tasks; ratio CI: paired bootstrap over tasks.",
        "",
        "| meta-training waves | 1 step MSE | ratio to fresh | 10 steps MSE | ratio to fresh "
        "| 1 step on own pool | best iteration |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        cells = [row["label"]]
        for steps in map(str, p["eval_steps"]):
            e, r = row["test"][steps], row["ratio"][steps]
            cells.append(f"{_number(e['mean'])} ± {_number(e['ci'])}")
            cells.append(
                f"{_number(r['value'], 2)} [{_number(r['low'], 2)}, {_number(r['high'], 2)}]"
            )
        own = row.get("pool_error_1")
        cells.append("" if own is None else f"{own:.3f}")
        cells.append(" / ".join(str(b) for b in row["best_steps"]))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"{'Fresh tasks' if row['pool'] is None else 'M = ' + row['label']}, {steps} "
        f"step{'s' if steps != '1' else ''}: {e['diverged']} of {result['test_tasks']} test "
        f"tasks diverged (MSE above {DIVERGED:g}; predicting 0 scores at most 12.5), and the "
        f"mean is theirs; median {e['median']:.3f}."
        for row in result["rows"]
        for steps, e in row["test"].items()
        if e.get("diverged")
    ]
    per_seed = "; ".join(
        f"{row['label']}: " + " / ".join(f"{v:.3f}" for v in row["test"]["1"]["per_seed"])
        for row in result["rows"]
    )
    lines += ["", *notes, f"1-step test MSE per seed ({per_seed}).", ""]
    met = []
    for steps in map(str, p["eval_steps"]):
        found = result["smallest_within"][steps]
        lines.append(f"- After {steps} step{'s' if steps != '1' else ''}: " + _smallest(found, tol))
        met.append(found["m"] is not None and found["m"] < p["target"])
    verdicts = [
        f"{'met' if ok else 'not met'} after {steps} step{'s' if steps != 1 else ''}"
        for steps, ok in zip(p["eval_steps"], met, strict=True)
    ]
    lines.append(f"- The design's target, under {p['target']} tasks: {', '.join(verdicts)}.")
    curve = result["fresh_curve"]
    points = _curve_points(curve["steps"])
    lines += [
        "",
        "Fresh-task training curve (validation MSE after 1 step, mean over seeds):",
        "",
        "| iteration | " + " | ".join(str(curve["steps"][i]) for i in points) + " |",
        "|---|" + "---:|" * len(points),
        "| MSE | " + " | ".join(f"{curve['values'][i]:.3f}" for i in points) + " |",
        "",
        f"Over the last half of training the best fresh-task validation error fell by "
        f"{100 * curve['last_half_drop']:.0f} %, over the last quarter by "
        f"{100 * curve['last_quarter_drop']:.0f} %: "
        + (
            "close to converged at this count."
            if curve["last_quarter_drop"] < 0.05
            else "still improving, so fresh tasks are not at their asymptote; the ratios "
            "compare equal training budgets."
        ),
        f"Wall time {result['wall_seconds']:.0f} s with {result['workers']} worker(s); "
        f"{result['ms_per_iteration']:.1f} ms per meta-iteration per worker, validation "
        "included"
        + (
            f" ({result['cpu_ms_per_iteration']:.1f} ms of CPU: the rest is other load)."
            if "cpu_ms_per_iteration" in result
            else "."
        ),
    ]
    return "\n".join(lines)


def _number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.2g}"


def _smallest(found: dict[str, Any], tol: int) -> str:
    if found["m"] is None:
        return f"no pool size tried is within {tol} % of fresh tasks."
    if found["interpolated"]:
        low, high = found["between"]
        return (
            f"within {tol} % of fresh tasks from M ≈ {found['m']:.0f} (interpolated on log M "
            f"between {low} and {high})."
        )
    return f"within {tol} % of fresh tasks from M = {found['m']:.0f}, the smallest pool tried."


def _curve_points(steps: list[int], n: int = 9) -> list[int]:
    return sorted({round(i) for i in np.linspace(0, len(steps) - 1, min(n, len(steps)))})


def _train(job: dict[str, Any]) -> dict[str, Any]:
    """One run: meta-train on ``job['pool']`` waves (None: fresh) and test the best checkpoint."""
    p = PROTOCOL
    net = PolicyNet(1, tuple(p["hidden"]), activation=p["activation"])
    learner = MAML(
        net,
        inner_steps=p["inner_steps"],
        inner_lr=p["inner_lr"],
        meta_lr=p["meta_lr"],
        seed=job["seed"],
    )
    source = SinusoidTasks(pool_size=job["pool"], seed=job["seed"])
    shots = p["shots"]
    val = source.evaluation_tasks(job["val_tasks"], shots, p["test_queries"], seed=VAL_SEED)
    test = source.evaluation_tasks(job["test_tasks"], shots, p["test_queries"], seed=TEST_SEED)
    checks = job["iterations"] // job["eval_every"] + 2
    cpu_start = time.process_time()
    history = meta_train(
        learner,
        lambda: source.sample(p["meta_batch"], shots, shots),
        val,
        iterations=job["iterations"],
        eval_every=job["eval_every"],
        evaluate=lambda lrn, tasks: float(adapted_errors(lrn, tasks, p["inner_steps"]).mean()),
        stopper=EarlyStopping(patience=checks),  # never stops: checkpoint selection only
    )
    cpu_seconds = time.process_time() - cpu_start
    out = {
        "pool": job["pool"],
        "seed": job["seed"],
        "test": {str(s): adapted_errors(learner, test, s).tolist() for s in p["eval_steps"]},
        "val_steps": history.val_steps,
        "val_values": history.val_values,
        "best_step": history.best_step,
        "seconds": history.seconds,
        "cpu_seconds": cpu_seconds,
    }
    if job["pool"] is not None:
        # Error on the pool's own waves (fresh inputs): how far a small pool is memorised.
        own = source.sample(job["val_tasks"], shots, p["test_queries"])
        out["pool_error_1"] = float(adapted_errors(learner, own, 1).mean())
    return out


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
