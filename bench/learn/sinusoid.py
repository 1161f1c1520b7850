"""Sinusoid regression on the MAML paper's protocol: MAML, FOMAML, Reptile, Meta-SGD, ANIL and
the paper's "pretrained on all tasks, then fine-tuned" baseline.

Protocol (Finn, Abbeel & Levine, 2017, section 5.1): amplitude U[0.1, 5], phase U[0, π],
x U[−5, 5]; ``PolicyNet(1, (40, 40), activation="relu")``; meta-batch 25 tasks of K support
and K query points; Adam 1e-3 outside, inner step 0.01 and, as the paper trained its sinusoid
MAML, one inner step in training. Every (learner, K) is trained on fresh tasks for the same
number of meta-iterations (:data:`PROTOCOL`; Reptile fewer, see below), validated every
``eval_every`` iterations on ``val_tasks`` held-out waves (own seed, never the test waves)
after the learner's own inner steps, and the best validation checkpoint is kept
(``monitor.EarlyStopping``). The test is 600 new waves with K support and 100 query points:
the query MSE with a 95 % interval after 0, 1 and 10 inner steps
(:func:`test_mse`; Meta-SGD with its learned step sizes; a task whose adaptation diverges is
counted, not averaged, and fails the reference checks).

Where this differs from the papers:

- Reptile uses the settings of the Reptile authors' sinusoid code (:data:`REPTILE`): inner step
  0.02 and 5 steps on all 2K points of a task, outer step 0.1 annealed linearly to 0; it is
  evaluated at its own inner step 0.02. The meta-batch stays 25 (theirs was 1, for 30,000
  iterations), and it gets a third of the iterations of the others, as each costs about 3x.
- Meta-SGD starts every learned step size at 0.01 (the paper draws them in [0.005, 0.1]).
- The iteration budget (:data:`PROTOCOL`) is the paper's 70,000 (Reptile: its share). At
  30,000, MAML was still improving (its best validation error fell 11 to 26 % over the
  second half) and missed the reference figures after one step; the whole section takes about
  25 minutes on two idle cores at 70,000. The result records the validation curve and the
  CPU seconds of every job, to show how far from converged each run is.
- The baseline regresses all tasks jointly with the same Adam and is fine-tuned with gradient
  steps of 0.01 and, separately, with the step size (of :data:`FINE_TUNE_LRS`) that is best on
  the validation waves, per number of steps.

The (learner, K) trainings run in a pool of ``workers`` spawned processes. The MAML initial
weights of a full run are saved (:func:`cache_path`) for the ``efficiency`` section.

Examples
--------
>>> [passes({"mean": mean, "half_width": 0.02}, 0.31) for mean in (0.30, 0.33, 0.36)]
[True, True, False]
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import EarlyStopping, SinusoidTasks, meta_train, query_loss
from adaptd.adapters.tasks.stats import mean_ci95

from .baselines import JointRegression
from .harness.parallel import run_parallel

__all__ = [
    "FINE_TUNE_LRS",
    "LEARNERS",
    "PROTOCOL",
    "REFERENCES",
    "REPTILE",
    "cache_path",
    "make_learner",
    "passes",
    "run",
    "summary",
    "test_mse",
    "train_and_test",
]

PROTOCOL: dict[str, Any] = {
    "hidden": [40, 40],
    "activation": "relu",
    "meta_batch": 25,
    "meta_lr": 1e-3,
    "inner_lr": 0.01,
    "train_inner_steps": 1,
    "shots": [5, 10, 20],
    "iterations": 70_000,
    "eval_every": 2000,
    "patience": 10,
    "val_tasks": 200,
    "test_tasks": 600,
    "query_points": 100,
    "eval_steps": [0, 1, 10],
    "val_seed": 2_000_003,
    "test_seed": 1_000_003,
}
QUICK: dict[str, Any] = {
    "shots": [5],
    "iterations": 6,
    "eval_every": 3,
    "val_tasks": 8,
    "test_tasks": 10,
    "query_points": 20,
}
REPTILE: dict[str, Any] = {
    "inner_lr": 0.02,
    "inner_steps": 5,
    "outer_lr": 0.1,
    "iteration_share": 0.32,
}
"""The Reptile code's sinusoid settings; ``iteration_share`` of the protocol's iterations (an
iteration costs it about 3x MAML's: 5 steps on 2K points, and a support-only adaptation for
its statistics)."""
LEARNERS = ("maml", "fomaml", "reptile", "metasgd", "anil", "pretrained")
FINE_TUNE_LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
REFERENCES: dict[tuple[str, int], dict[int, float]] = {
    ("maml", 5): {1: 0.50, 10: 0.28},
    ("maml", 10): {1: 0.31, 10: 0.14},  # 0.11 to 0.14 reported: the weaker end is the bar
}
"""Reference MSE of a careful reimplementation (issue 3), by (learner, K) and steps."""
_CLASSES = {"maml": MAML, "fomaml": FOMAML, "metasgd": MetaSGD, "anil": ANIL}
_COST = {"reptile": 4.0, "metasgd": 1.6, "fomaml": 1.1, "maml": 1.0, "anil": 0.9}


def make_learner(name: str, seed: int) -> Any:
    """The learner ``name`` (one of :data:`LEARNERS`) with the protocol's settings."""
    net = PolicyNet(1, tuple(PROTOCOL["hidden"]), activation=PROTOCOL["activation"])
    steps, inner, outer = PROTOCOL["train_inner_steps"], PROTOCOL["inner_lr"], PROTOCOL["meta_lr"]
    if name == "reptile":
        return Reptile(
            net,
            inner_steps=REPTILE["inner_steps"],
            inner_lr=REPTILE["inner_lr"],
            meta_lr=REPTILE["outer_lr"],
            seed=seed,
        )
    if name == "pretrained":
        return JointRegression(net, inner_steps=steps, inner_lr=inner, meta_lr=outer, seed=seed)
    if name not in _CLASSES:
        raise ValueError(f"name must be one of {LEARNERS}, got {name!r}")
    return _CLASSES[name](net, inner_steps=steps, inner_lr=inner, meta_lr=outer, seed=seed)


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


def passes(estimate: dict[str, float], reference: float) -> bool:
    """ "At least as good within the CI": the interval's lower end is at or below ``reference``."""
    return estimate["mean"] - estimate["half_width"] <= reference


def cache_path(seed: int) -> Path:
    """Where a full run keeps its MAML initial weights per K (read by ``efficiency``)."""
    return Path(tempfile.gettempdir()) / "adaptd-bench" / f"sinusoid-maml-seed{seed}.pt"


def run(*, quick: bool, seed: int, workers: int | None = None) -> dict[str, Any]:
    """Train and test every learner at every K (see the module docstring)."""
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


def summary(result: dict[str, Any]) -> str:
    """Markdown: per K, the test MSE of every learner, and the reference checks."""
    p = result["protocol"]
    lines = [
        f"MAML sinusoid protocol: 1-{'-'.join(map(str, p['hidden']))}-1 {p['activation']}, "
        f"meta-batch {p['meta_batch']}, K support + K query, Adam {p['meta_lr']}, "
        f"{p['train_inner_steps']} inner step of {p['inner_lr']} in training (the paper's "
        f"sinusoid MAML), {p['iterations']} meta-iterations (paper: 70,000), best of "
        f"validation on {p['val_tasks']} other waves every {p['eval_every']}. Test: "
        f"{p['test_tasks']} new waves, {p['query_points']} query points, MSE ± 95 % CI after "
        "0/1/10 steps of 0.01 (Meta-SGD: learned step sizes). Reptile: the Reptile code's "
        f"sinusoid settings, {REPTILE['inner_steps']} inner steps of {REPTILE['inner_lr']} on "
        f"all 2K points, outer step {REPTILE['outer_lr']} annealed to 0, "
        f"{REPTILE['iteration_share']:.0%} of the iterations, evaluated with steps of "
        f"{REPTILE['inner_lr']}. {result['workers']} worker process(es), "
        f"{result['wall_seconds']:.0f} s wall, {result['cpu_seconds']:.0f} CPU s in the jobs.",
    ]
    for k in p["shots"]:
        lines += [
            "",
            f"K = {k} | iterations (best) | train s | last-half gain | 0 steps | 1 step | 10 steps",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in result["runs"] if r["shots"] == k):
            gain = r["last_half_gain"]
            cells = [
                f"{r['iterations']} ({r['best_iteration']})",
                f"{r['train_seconds']:.0f}",
                "" if gain is None else f"{100 * gain:.1f} %",
                *(_cell(r["mse"][str(s)]) for s in p["eval_steps"]),
            ]
            label = "pretrained, fine-tune 0.01" if r["learner"] == "pretrained" else r["learner"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
            if "tuned" in r:
                tuned = r["tuned"]
                cells = ["", "", "", ""] + [
                    f"{_cell(tuned[str(s)])} (lr {tuned[str(s)]['lr']})"
                    for s in p["eval_steps"]
                    if s > 0
                ]
                lines.append("| pretrained, lr chosen on validation | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Last-half gain: how much the best validation MSE improved in the second half of "
        "training (near 0: converged at this budget).",
        "",
        "| check | reference | ours | at least as good within the CI |",
        "|---|---:|---:|---|",
    ]
    for c in result["checks"]:
        lines.append(
            f"| {c['check']} | {c['reference']:.3g} | {_cell(c)} | "
            f"{'pass' if c['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines)


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


def _cell(figures: dict[str, float]) -> str:
    diverged = figures.get("diverged", 0)
    note = f" ({diverged} of {diverged + figures['n']} diverged)" if diverged else ""
    mean, half = figures["mean"], figures["half_width"]
    if abs(mean) >= 1000:  # blown up on some tasks: the order of magnitude is what matters
        return f"{mean:.1e} ± {half:.1e}{note}"
    return f"{mean:.3f} ± {half:.3f}{note}"
