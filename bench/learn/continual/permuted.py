"""1000 permuted tasks: how much of each early task a strategy keeps on one fixed network.

Data (:mod:`.data`): permuted digits (every task uses the fixed 1438 training and 359 test
images) and permuted Fashion-MNIST (a seeded subset of 1000 training and 500 test images per
task); task ``t`` permutes the pixels with a permutation drawn from ``(seed, t)``. Fashion-MNIST
is skipped, and said so, when its Debian package is missing and cannot be installed.

Network and training, the same for every strategy (the GEM paper's protocol for permuted
MNIST, Lopez-Paz & Ranzato 2017): ``PolicyNet(in, (100, 100), relu, out_dim=10)``, one pass
over each task's training set, plain SGD, step 0.1, batches of 10. Runs: naive fine-tuning,
every strategy of ``adaptd.adapters.continual.strategies()`` (options from :mod:`.configs`,
the tunable value chosen on validation) and joint training (every task's data mixed, one pass
over each example: the upper bound on average accuracy for this network and budget).

Validation: each grid point of a strategy's tunable value runs on a separate sequence of 20
permuted tasks with other permutation seeds (``seed + 10_000``), trained on 80 % of the
training images and scored on the other 20 % (:meth:`.data.Dataset.validation`); the best
final average accuracy wins. Test images are never seen before the final runs.

Time plan (12-task pilots of every strategy on this machine, one torch thread): training a
task takes 21 ms (naive) to 1.4 s (GEM with 10 constrained tasks on Fashion-MNIST); a
1000-task run of naive fine-tuning takes about 28 s on digits and 50 s on Fashion-MNIST,
evaluation included (``eval_every=50``: 20 full rows of the accuracy matrix, about 12,500 task
evaluations). Each strategy's run starts with that pilot; :mod:`.budget` extrapolates it with
the strategy's declared cost growth and runs the longest of 1000, 500, 200, ... tasks
predicted to fit :data:`BUDGET` seconds (the cut-off, its reason and the predictions are in
the JSON). With 180 s the pilots gave 1000 tasks to most strategies, 500 (digits) and 200
(Fashion-MNIST) to per-task EWC with its 10 penalties, 200 and 100 to GEM, 500 to A-GEM and
generative replay on Fashion-MNIST, 50 to progressive networks (100 columns would take about
45 minutes, 200 about 6 hours), and growth is capped at 500. Runs and pilots add up to about
2,600 worker-seconds, joint training (about 100,000 steps a data set) to 100 and tuning
(20-task validation sequences, about 40 grid points a data set) to 300: about 25 minutes on
2 workers.

Examples
--------
>>> PROTOCOL["tasks"], PROTOCOL["setup"]["hidden"]
(1000, [100, 100])
"""

from __future__ import annotations

import time
from typing import Any

from . import configs, data, jobs
from .budget import LADDER, eval_every_for, pilot, plan
from .joint import run_joint
from .runs import TARGET, Setup, run_strategy
from .tables import notes, strategy_table

__all__ = [
    "BUDGET",
    "PROTOCOL",
    "QUICK",
    "benchmark_sequence",
    "run",
    "setup_for",
    "summary",
    "validation_sequence",
]

BUDGET = 180.0
"""Seconds of one strategy's run on one data set (training plus evaluation)."""

PROTOCOL: dict[str, Any] = {
    "tasks": 1000,
    "setup": {
        "hidden": [100, 100],
        "activation": "relu",
        "epochs": 1,
        "batch_size": 10,
        "lr": 0.1,
        "optimizer": "sgd",
    },
    "sizes": {
        "digits": {"train": None, "test": None},
        "fashion_mnist": {"train": 1000, "test": 500},
    },
    "validation": {"tasks": 20, "fraction": 0.2, "seed_offset": 10_000},
    "pilot_tasks": 12,
    "budget_seconds": BUDGET,
    "workers": 2,
}
QUICK: dict[str, Any] = {
    "tasks": 6,
    "setup": {**PROTOCOL["setup"], "hidden": [32], "batch_size": 25},
    "sizes": {"digits": {"train": 150, "test": 100}, "fashion_mnist": {"train": 150, "test": 100}},
    "validation": {"tasks": 3, "fraction": 0.2, "seed_offset": 10_000},
    "pilot_tasks": 0,
    "workers": 1,
}
KIND = "permuted"
CRITERION = "final average accuracy on the validation sequence"


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every strategy, naive and joint on both data sets (module docstring)."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    datasets, available = _available()
    tuning, records, joints = jobs.tune_then_run_section(
        _job, available, config, quick=quick, seed=seed, kind=KIND, criterion=CRITERION
    )
    for d, joint in zip(available, joints, strict=True):
        datasets[d].update({"joint": joint, "tuning": tuning[d], "strategies": records[d]})
    return {
        "protocol": config,
        "target": TARGET,
        "memory_budget": configs.MEMORY[KIND],
        "datasets": datasets,
    }


def validation_sequence(dataset: str, config: dict[str, Any], seed: int) -> data.PermutedTasks:
    """The validation sequence of ``dataset``: training images only, other permutations."""
    v = config["validation"]
    held = data.load(dataset).validation(v["fraction"], seed)
    sizes = config["sizes"][dataset]
    return data.PermutedTasks(
        held,
        v["tasks"],
        seed=seed + v["seed_offset"],
        train_size=_cap(sizes["train"], len(held.train_y)),
        test_size=_cap(sizes["test"], len(held.test_y)),
    )


def benchmark_sequence(
    dataset: str, n_tasks: int, config: dict[str, Any], seed: int
) -> data.PermutedTasks:
    """The first ``n_tasks`` tasks of the benchmark sequence of ``dataset``."""
    sizes = config["sizes"][dataset]
    return data.PermutedTasks(
        data.load(dataset), n_tasks, seed=seed, train_size=sizes["train"], test_size=sizes["test"]
    )


def setup_for(dataset: str, config: dict[str, Any], seed: int) -> Setup:
    """The network and training of ``dataset``'s sequence."""
    return Setup.from_table(
        config["setup"], in_dim=data.load(dataset).in_dim, out_dim=10, seed=seed
    )


def _job(job: dict[str, Any]) -> dict[str, Any]:
    config, seed, d = job["config"], job["seed"], job["setting"]
    setup = setup_for(d, config, seed)
    if job["job"] == "tune":
        tasks = validation_sequence(d, config, seed)
        record = run_strategy(job["strategy"], job["options"], tasks, setup, eval_every=len(tasks))
        return jobs.tune_score(record)
    if job["job"] == "joint":
        tasks = benchmark_sequence(d, config["tasks"], config, seed)
        return run_joint(tasks, tasks, setup)
    name, options = job["strategy"], job["options"]
    entry = configs.entry(name)
    n_max = min(config["tasks"], entry.max_tasks or config["tasks"])
    chosen: dict[str, Any] = {"tasks": n_max, "reason": "quick run" if job["quick"] else ""}
    if config["pilot_tasks"] and not job["quick"]:
        start = time.perf_counter()
        try:
            pilot_tasks = benchmark_sequence(d, config["pilot_tasks"], config, seed)
            train, evaluate = pilot(name, options, pilot_tasks, setup)
        except Exception as error:  # the run below fails the same way and records it
            chosen = {"tasks": config["pilot_tasks"], "reason": f"pilot failed: {error}"}
        else:
            chosen = plan(
                train,
                evaluate,
                growth=entry.growth,
                budget=config["budget_seconds"],
                ladder=sorted({config["tasks"], *(n for n in LADDER if n < config["tasks"])}),
                max_tasks=entry.max_tasks,
            )
            chosen["pilot_seconds"] = round(time.perf_counter() - start, 2)
    n = chosen["tasks"]
    record = run_strategy(
        name, options, benchmark_sequence(d, n, config, seed), setup, eval_every=eval_every_for(n)
    )
    complete = n == config["tasks"]
    met = bool(record.get("target_met")) and complete
    return {**record, "target_met": met, "plan": chosen, "complete": complete}


def _available() -> tuple[dict[str, dict[str, Any]], list[str]]:
    datasets: dict[str, dict[str, Any]] = {}
    for name in data.DATASETS:
        datasets[name], loaded = jobs.dataset_status(name)
        if loaded is not None:
            datasets[name].update(
                in_dim=loaded.in_dim,
                train_images=len(loaded.train_y),
                test_images=len(loaded.test_y),
            )
    return datasets, [n for n, d in datasets.items() if d["available"]]


def _cap(size: int | None, total: int) -> int | None:
    return None if size is None else min(size, total)


def summary(result: dict[str, Any]) -> str:
    """Markdown: the protocol, then a table per data set."""
    p = result["protocol"]
    s = p["setup"]
    lines = [
        f"{p['tasks']} permuted tasks per data set on one fixed network, PolicyNet "
        f"{tuple(s['hidden'])} {s['activation']}, 10 outputs; {s['epochs']} pass over each "
        f"task, {s['optimizer'].upper()} step {s['lr']}, batches of {s['batch_size']} (the GEM "
        f"paper's protocol). Memory budget of the strategies that store examples: "
        f"{result['memory_budget']} examples. Tunable values chosen on a "
        f"{p['validation']['tasks']}-task validation sequence (training images only, other "
        f"permutations). A strategy whose predicted time exceeds "
        f"{p.get('budget_seconds', BUDGET):.0f} s runs fewer tasks (column *tasks*). Target: "
        f"mean retention of the earliest 10 % of tasks above {result['target']:.0%}.",
    ]
    for name, d in result["datasets"].items():
        lines += ["", f"**{name}**", ""]
        if not d["available"]:
            lines.append(f"Not available: {d['reason']}.")
            continue
        lines += strategy_table(d["strategies"], d["joint"])
        lines += notes(d["strategies"], d["tuning"])
    return "\n".join(lines)
