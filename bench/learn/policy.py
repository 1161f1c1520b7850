"""The daemon's own problem: which meta-learner adapts its policy best on real prices.

Every algorithm the daemon can run (``adaptation.meta_algorithm``) is meta-trained and
evaluated on the task the daemon solves after a shift, built from the real price series that
ship with river (Bitcoin, Brent crude, Apple; ``adaptd.adapters.tasks.series``):

- examples are the daemon's own: its feature vector and delayed, volatility-scaled label
  (``adaptd.daemon.core.features`` and ``labels`` with the default settings);
- a task is ``shots`` consecutive examples (the daemon's default 20), the last ``query_size``
  (8) held out as the query set, exactly as the daemon's adaptation requests;
- time split per series: tasks from the first 60 % of each series meta-train, the next 15 %
  validate (the default algorithm is chosen there), the last 25 % are the test (later data
  than any model saw; never used to choose anything);
- the network, inner steps, inner step size, meta-batch and Adam step are the daemon's
  defaults (``AdaptationSettings``); Reptile uses its ``meta_lr``.

Reported per algorithm, on the test tasks: query MSE after adaptation with 95 % CI, against
the same learner's initialisation without adaptation, the inner loop from a random
initialisation ("scratch") and a zero forecast (the no-skill forecast of a scaled return);
paired differences to no adaptation; meta-update milliseconds; adaptation p50/p99.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptd.adapters.fast_weights import adapt, mse
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks.stats import mean_ci95

from .harness.parallel import run_parallel

__all__ = ["ALGORITHMS", "run", "series_tasks", "summary"]

ALGORITHMS = ("maml", "fomaml", "reptile", "metasgd", "anil")
SPLIT = (0.60, 0.75)  # train | validation | test, by time within each series


@functools.cache
def series_examples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one river series through the daemon's features and delayed labels (computed
    once per process: every learner and the tuner share these arrays: never modify them)."""
    from adaptd.adapters.tasks import series as datasets
    from adaptd.daemon.config.settings import FeatureSettings
    from adaptd.daemon.core.features import FeatureExtractor
    from adaptd.daemon.core.labels import DelayedLabeler
    from adaptd.daemon.core.tasks.returns import ReturnTask

    settings = FeatureSettings()
    series = datasets.load(name)
    features = FeatureExtractor(settings)
    task = ReturnTask(horizon=settings.label_horizon, clip=settings.label_clip)
    labeler = DelayedLabeler(task.label_rule())
    xs, ys = [], []
    for i, price in enumerate(series.price):
        x = features.update(float(price))
        example = labeler.push(i, features, x, i, i)
        if example is not None:
            xs.append(example.x)
            ys.append(example.y)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32)


def series_tasks(
    x: np.ndarray, y: np.ndarray, *, shots: int, query: int, stride: int
) -> list[Task]:
    """Tasks of ``shots`` consecutive examples, the last ``query`` held out, every ``stride``."""
    tasks = []
    for start in range(0, len(x) - shots + 1, stride):
        xt = torch.from_numpy(x[start : start + shots])
        yt = torch.from_numpy(y[start : start + shots])
        tasks.append(Task(xt[:-query], yt[:-query], xt[-query:], yt[-query:]))
    return tasks


def _splits(quick: bool) -> tuple[list[Task], list[Task], list[Task]]:
    from adaptd.daemon.config.settings import AdaptationSettings

    s = AdaptationSettings()
    train: list[Task] = []
    val: list[Task] = []
    test: list[Task] = []
    for name in ("bitcoin", "brent", "apple"):
        x, y = series_examples(name)
        a, b = (int(len(x) * f) for f in SPLIT)
        # Training tasks overlap (stride 4) for more meta-training data; validation and test
        # tasks do not, so their errors are independent draws.
        train += series_tasks(x[:a], y[:a], shots=s.shots, query=s.query_size, stride=4)
        val += series_tasks(x[a:b], y[a:b], shots=s.shots, query=s.query_size, stride=s.shots)
        test += series_tasks(x[b:], y[b:], shots=s.shots, query=s.query_size, stride=s.shots)
    if quick:
        return train[:64], val[:16], test[:16]
    return train, val, test


def _settings(algorithm: str, overrides: dict[str, Any] | None = None) -> Any:
    from adaptd.daemon.config.settings import AdaptationSettings

    return AdaptationSettings(meta_algorithm=algorithm, **(overrides or {}))


def _overrides(algorithm: str, inner_lr: float, inner_steps: int, meta_lr: float) -> dict:
    """A tuned configuration as daemon settings (Reptile's outer step is ``meta_lr``)."""
    outer = "meta_lr" if algorithm == "reptile" else "adam_lr"
    return {"inner_lr": inner_lr, "inner_steps": inner_steps, outer: meta_lr}


def _net() -> PolicyNet:
    from adaptd.daemon.config.settings import AdaptationSettings, FeatureSettings
    from adaptd.daemon.core.features import feature_names
    from adaptd.daemon.core.tasks.returns import ReturnTask
    from adaptd.daemon.learner.messages import ACTIVATION

    return PolicyNet(
        len(feature_names(FeatureSettings())),
        AdaptationSettings().hidden,
        activation=ACTIVATION,
        output_scale=ReturnTask.head.output_scale,
    )


def _learner(algorithm: str, net: PolicyNet, overrides: dict[str, Any] | None = None) -> Any:
    from adaptd.daemon.learner.policy_learner import make_learner

    return make_learner(_settings(algorithm, overrides), net)


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
    settings = _settings(algorithm, overrides)
    train, val, test = _splits(quick)
    net = _net()
    learner = _learner(algorithm, net, overrides)
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
    train, val, _ = _splits(quick)
    net = _net()
    meta_batch = _settings(algorithm).meta_batch

    def factory(inner_lr: float, inner_steps: int, meta_lr: float) -> Any:
        return _learner(algorithm, net, _overrides(algorithm, inner_lr, inner_steps, meta_lr))

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
        chosen, quick, seed, _overrides(chosen, b["inner_lr"], b["inner_steps"], b["meta_lr"])
    )
    return {
        "rows": rows,
        "chosen_on_validation": chosen,
        "tuning": tuning,
        "tuned": tuned,
        "split": list(SPLIT),
    }


def _fmt(e: dict[str, float]) -> str:
    return f"{e['mean']:.3f} ± {e['ci95']:.3f}"


def _row(name: str, r: dict[str, Any]) -> str:
    te = r["test"]
    return (
        f"| {name} | {r['validation_adapted_mse']:.3f} | {_fmt(te['adapted'])} "
        f"| {_fmt(te['no_adaptation'])} | {_fmt(te['scratch'])} | {_fmt(te['zero'])} "
        f"| {_fmt(r['test_gain_vs_no_adaptation'])} | {r['best_iteration']} "
        f"| {r['meta_update_ms_median']:.1f} | {r['adapt_ms_p50']:.2f} / {r['adapt_ms_p99']:.2f} |"
    )


def summary(result: dict[str, Any]) -> str:
    rows = result["rows"]
    t = rows[0]["tasks"]
    chosen, tuned, best = result["chosen_on_validation"], result["tuned"], result["tuning"]["best"]
    lines = [
        "The daemon's task on real prices (Bitcoin, Brent, Apple from river): 20 consecutive "
        "examples of its own features and labels, 12 support and 8 query, with its default "
        f"network and inner loop. Time split per series: {t['train']} overlapping training "
        f"tasks (first 60 %), {t['validation']} validation tasks (next 15 %), {t['test']} test "
        "tasks (last 25 %). Each learner keeps the checkpoint with the lowest validation error "
        f"(of {rows[0]['iterations']} meta-iterations, checked every {rows[0]['eval_every']}); "
        "the algorithm and "
        "its tuning are chosen on validation only. MSE of the volatility-scaled forward return "
        "on the query examples, mean ± 95 % CI over test tasks.",
        "",
        "| algorithm | val MSE | test MSE adapted | no adaptation | scratch | zero forecast "
        "| gain vs no adaptation | best iteration | meta-update ms | adapt p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(r["algorithm"], r) for r in rows),
        _row(
            f"{chosen}, tuned (inner lr {best['inner_lr']:.3g}, {best['inner_steps']} steps, "
            f"meta lr {best['meta_lr']:.3g})",
            tuned,
        ),
        "",
        f"Lowest validation MSE with the daemon's defaults: **{chosen}**. Successive halving "
        f"over {result['tuning']['trials']} configurations (validation only) picked the tuned "
        "row.",
    ]
    return "\n".join(lines)
