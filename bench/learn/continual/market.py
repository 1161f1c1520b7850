"""Market regimes: does a return predictor keep what it learned about early regimes?

Data: the regime segments of river's real price series (Brent crude, Apple, Bitcoin; annotated
change points, detected ones for Brent before 2000: :func:`adaptd.adapters.tasks
.regime_dataset`), 37 segments from 1987 to 2019, one task each, in the order of their first
date. An example is the window ending at row ``e`` (``window_features``: 20 standardised
returns and 5 summaries, past data only) and its target is the next return scaled by the
window's realised volatility, ``clip(r[e+1] / v_e, -10, 10)``; every window of a segment whose
next return is inside it (stride 1, overlapping). The first 70 % of a segment's windows train,
the last 30 % test (a later period than anything trained on for that regime). Features are
standardised with the mean and deviation of the first task's training windows, fixed for the
whole sequence.

Model and training, the same for every strategy: ``PolicyNet(25, (32, 32), tanh,
output_scale=0.1)`` (a fresh network predicts about zero), mean squared error, Adam (restarted
each task) step 0.001, batches of 16, 5 passes a task. Scores are test MSEs (lower is better),
so retention of regime ``j`` is ``R[j, j] / R[last, j]`` and the accuracy-matrix metrics are
taken on ``-MSE``. The zero forecast's MSE per task is reported for reference: daily returns
carry little predictable signal, so most of an MSE is noise that no strategy can keep or lose.
Tunable values are chosen on the training windows alone: the last 20 % of each segment's
training windows score the first 80 %. Memory budget of the example-storing strategies: 200
windows.

Time plan (single runs measured): 6,687 training and 2,873 test windows over 37 tasks; a run
takes about 1 s (naive, regularisers, packnet) to 4 s (GEM) and 10 s (progressive networks,
37 columns); with about 30 tuning runs, about 80 worker-seconds: about a minute on 2 workers.

Examples
--------
>>> tasks, segments = regime_tasks(validation=False)
>>> len(tasks), tasks[0].train_x.shape[1], segments[0]["first_date"] < segments[-1]["first_date"]
(37, 25, True)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from adaptd.adapters.continual import ContinualTask

from . import configs, jobs
from .runs import Setup
from .tables import label, notes

__all__ = ["PROTOCOL", "QUICK", "regime_tasks", "run", "summary"]

PROTOCOL: dict[str, Any] = {
    "window": 20,
    "lookback": 20,
    "test_fraction": 0.3,
    "validation_fraction": 0.2,
    "setup": {
        "hidden": [32, 32],
        "activation": "tanh",
        "output_scale": 0.1,
        "epochs": 5,
        "batch_size": 16,
        "lr": 0.001,
        "optimizer": "adam",
    },
    "earliest": 0.1,
    "workers": 2,
    "tasks": None,
}
QUICK: dict[str, Any] = {
    **PROTOCOL,
    "setup": {**PROTOCOL["setup"], "hidden": [8], "epochs": 1},
    "workers": 1,
    "tasks": 6,
}
KIND = "market"
CRITERION = "final mean test MSE on the validation windows (lower is better)"
CLIP = 10.0


@functools.cache
def regime_tasks(
    *,
    validation: bool,
    window: int = 20,
    lookback: int = 20,
    test_fraction: float = 0.3,
    validation_fraction: float = 0.2,
) -> tuple[list[ContinualTask], list[dict[str, Any]]]:
    """The regime tasks in time order and a description of each segment (module docstring);
    ``validation``: the training windows only, their last ``validation_fraction`` as test."""
    from adaptd.adapters.tasks import regime_dataset
    from adaptd.adapters.tasks import series as datasets
    from adaptd.adapters.tasks.market import window_ends, window_features

    regimes = regime_dataset(window=window, lookback=lookback)
    ordered = sorted(regimes.segments, key=lambda s: (s.first_date, s.series))
    prices = {
        name: np.asarray(datasets.load(name).price, float) for name in {s.series for s in ordered}
    }
    parts, described = [], []
    for seg in ordered:
        price = prices[seg.series]
        ends = window_ends(seg.start, seg.end, window=window, stride=1, lookback=lookback)
        ends = ends[ends + 1 < seg.end]  # the next return must belong to the same regime
        x = window_features(price, ends, window=window, lookback=lookback)
        scale = np.exp(x[:, window + 1])  # the log_vol column: the window's realised volatility
        y = np.clip(np.log(price[ends + 1] / price[ends]) / scale, -CLIP, CLIP)
        cut = round((1 - test_fraction) * len(ends))
        if validation:
            x, y = x[:cut], y[:cut]
            cut = round((1 - validation_fraction) * cut)
        parts.append((x, y, cut))
        described.append(
            {
                "series": seg.series,
                "first_date": seg.first_date,
                "last_date": seg.last_date,
                "source": seg.source,
                "train": cut,
                "test": len(y) - cut,
                "zero_mse": round(float(np.mean(y[cut:] ** 2)), 4),
            }
        )
    first_x = parts[0][0][: parts[0][2]]
    mean, std = first_x.mean(0), np.maximum(first_x.std(0), 1e-6)
    tasks = []
    for t, (x, y, cut) in enumerate(parts):
        xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
        ys = torch.from_numpy(y.astype(np.float32))
        tasks.append(ContinualTask(t, xs[:cut], ys[:cut], xs[cut:], ys[cut:]))
    return tasks, described


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every strategy, naive and joint on the regime sequence (module docstring)."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    tuning, records, joints = jobs.tune_then_run_section(
        _job,
        ["regimes"],
        config,
        quick=quick,
        seed=seed,
        kind=KIND,
        criterion=CRITERION,
        higher_is_better=False,
    )
    _, segments = _tasks(config, validation=False)
    return {
        "protocol": config,
        "memory_budget": configs.MEMORY[KIND],
        "segments": segments,
        "joint": joints[0],
        "tuning": tuning["regimes"],
        "strategies": records["regimes"],
    }


def _tasks(config: dict[str, Any], *, validation: bool) -> tuple[list[ContinualTask], list[Any]]:
    tasks, segments = regime_tasks(
        validation=validation,
        window=config["window"],
        lookback=config["lookback"],
        test_fraction=config["test_fraction"],
        validation_fraction=config["validation_fraction"],
    )
    n = config["tasks"] or len(tasks)
    return tasks[:n], segments[:n]


def _job(job: dict[str, Any]) -> dict[str, Any]:
    config, seed = job["config"], job["seed"]
    tasks, _ = _tasks(config, validation=job["job"] == "tune")
    in_dim = int(tasks[0].train_x.shape[1])
    setup = Setup.from_table(config["setup"], in_dim=in_dim, out_dim=1, seed=seed, loss="mse")
    return jobs.run_on_tasks(job, tasks, setup, earliest=config["earliest"])


def early_regimes(record: dict[str, Any], zero: list[float], earliest: float) -> dict[str, Any]:
    """On the earliest regimes: MSE just after learning each, at the end, and the zero
    forecast's, as means."""
    matrix = record["matrix"]
    head = max(1, round(earliest * len(matrix)))
    after = [matrix[j][j] for j in range(head)]
    final = [matrix[-1][j] for j in range(head)]
    return {
        "tasks": head,
        "mse_after": round(float(np.mean(after)), 4),
        "mse_final": round(float(np.mean(final)), 4),
        "zero_mse": round(float(np.mean(zero[:head])), 4),
    }


def summary(result: dict[str, Any]) -> str:
    """Markdown: protocol, then MSE and retention per strategy."""
    p, s = result["protocol"], result["protocol"]["setup"]
    segments = result["segments"]
    zero = [seg["zero_mse"] for seg in segments]
    lines = [
        f"{len(segments)} regime segments of river's Brent, Apple and Bitcoin prices "
        f"({segments[0]['first_date']} to {segments[-1]['last_date']}), one regression task "
        f"each in time order: next volatility-scaled return from {p['window']} standardised "
        f"returns and 5 summaries; first {1 - p['test_fraction']:.0%} of each segment trains, "
        f"the rest tests. PolicyNet {tuple(s['hidden'])} {s['activation']}, MSE, "
        f"{s['optimizer']} step {s['lr']}, {s['epochs']} passes a task. Memory budget "
        f"{result['memory_budget']} windows. Zero forecast: mean test MSE "
        f"{np.mean(zero):.3f}. Retention of a regime is its MSE just after learning it "
        f"divided by its MSE at the end (above 1: it got better); BWT and forgetting are taken on "
        f"-MSE (positive BWT: earlier regimes got better).",
        "",
        "| strategy | final mean MSE | BWT | forgetting | retention, earliest "
        "10 % mean (worst) | retention, all | earliest regimes: MSE after / at end / zero |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["strategies"].items():
        if "error" in r:
            lines.append(f"| {label(name)} | error: {r['error'][:80]} |" + " |" * 5)
            continue
        m, ret = r["metrics"], r["metrics"]["retention"]
        e = early_regimes(r, zero, p["earliest"])
        lines.append(
            f"| {label(name)} | {m['average_accuracy']:.3f} | {m['backward_transfer']:+.3f} | "
            f"{m['forgetting']:.3f} | {ret['earliest']['mean']:.3f} "
            f"({ret['earliest']['worst']:.3f}) | {ret['all']['mean']:.3f} "
            f"({ret['all']['worst']:.3f}) | {e['mse_after']:.3f} / {e['mse_final']:.3f} / "
            f"{e['zero_mse']:.3f} |"
        )
    lines.append(f"| joint (upper bound) | {result['joint']['average_accuracy']:.3f} |" + " |" * 5)
    lines += notes(result["strategies"], result["tuning"])
    return "\n".join(lines)
