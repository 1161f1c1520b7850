"""Cost: training time per task and memory of every strategy, against naive fine-tuning.

Every strategy runs the first 20 tasks of the permuted digits and permuted Fashion-MNIST
sequences of :mod:`.permuted` (same network, training and memory budget; tunable values at
their constructor defaults, since cost hardly depends on them) in the same run as naive
fine-tuning, in 2 workers of one torch thread each. Per strategy: training seconds per task
(hooks and steps, evaluation excluded; over all 20 tasks and over the last 2, where costs that
grow with the tasks show), evaluation seconds per task (``predict``), bytes the strategy holds
beyond the model after the 20th task, and model parameters; time ratio = seconds per task
divided by naive's; memory ratio = (model bytes + strategy bytes) divided by naive's model
bytes (naive holds nothing else).

Time plan: 20 tasks cost from 0.5 s (naive) to about 40 s (GEM with 10 constrained tasks,
progressive networks at 20 columns): about 2 minutes with 2 workers.

Examples
--------
>>> ratios({"seconds_per_task": {"mean": 0.2}, "parameters": {"final": 10},
...         "memory_bytes": {"final": 40}}, {"seconds_per_task": {"mean": 0.1},
...         "parameters": {"final": 10}, "memory_bytes": {"final": 0}})
{'time': 2.0, 'memory': 2.0}
"""

from __future__ import annotations

from typing import Any

from ..harness.parallel import run_parallel
from . import configs, data
from .jobs import slow_first, strategy_names
from .permuted import PROTOCOL as PERMUTED
from .permuted import QUICK as PERMUTED_QUICK
from .permuted import benchmark_sequence, setup_for
from .runs import run_strategy
from .tables import label, size

__all__ = ["PROTOCOL", "ratios", "run", "summary"]

PROTOCOL: dict[str, Any] = {"tasks": 20, "workers": 2}
QUICK: dict[str, Any] = {"tasks": 3, "workers": 1}
BYTES_PER_PARAMETER = 4  # float32 weights


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every strategy and naive on the first tasks of both permuted sequences."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    permuted = {**PERMUTED, **(PERMUTED_QUICK if quick else {})}
    names = strategy_names()
    available = []
    for name in data.DATASETS:
        try:
            data.load(name)
            available.append(name)
        except OSError:
            continue
    jobs = [
        {
            "dataset": d,
            "strategy": n,
            "config": config,
            "permuted": permuted,
            "seed": seed,
            "options": configs.options(n, "permuted", quick=quick, seed=seed),
        }
        for n in slow_first(names)
        for d in available
    ]
    results = run_parallel(_job, jobs, config["workers"])
    table: dict[str, dict[str, Any]] = {d: {} for d in available}
    for job, result in zip(jobs, results, strict=True):
        table[job["dataset"]][job["strategy"]] = result
    for d in available:
        naive = table[d]["naive"]
        table[d] = {n: {**table[d][n], "ratio": ratios(table[d][n], naive)} for n in names}
    return {"protocol": config, "permuted_setup": permuted["setup"], "datasets": table}


def ratios(record: dict[str, Any], naive: dict[str, Any]) -> dict[str, float | None]:
    """Time per task and total memory (model plus strategy) relative to naive's."""
    if "error" in record or "error" in naive:
        return {"time": None, "memory": None}
    model = naive["parameters"]["final"] * BYTES_PER_PARAMETER
    total = record["parameters"]["final"] * BYTES_PER_PARAMETER + record["memory_bytes"]["final"]
    return {
        "time": round(record["seconds_per_task"]["mean"] / naive["seconds_per_task"]["mean"], 2),
        "memory": round(total / model, 2),
    }


def _job(job: dict[str, Any]) -> dict[str, Any]:
    permuted, seed, config = job["permuted"], job["seed"], job["config"]
    tasks = benchmark_sequence(job["dataset"], config["tasks"], permuted, seed)
    record = run_strategy(
        job["strategy"],
        job["options"],
        tasks,
        setup_for(job["dataset"], permuted, seed),
        eval_every=config["tasks"],
        keep_matrix=False,
    )
    if "error" in record:
        return record
    return {
        "options": record["options"],
        "tasks": record["tasks"],
        "seconds_per_task": record["seconds_per_task"],
        "eval_seconds_per_task": round(record["eval_seconds"] / (4 * config["tasks"] - 2), 5),
        "memory_bytes": record["memory_bytes"],
        "parameters": record["parameters"],
        "average_accuracy": record["metrics"]["average_accuracy"],
    }


def summary(result: dict[str, Any]) -> str:
    """Markdown: one table per data set."""
    p = result["protocol"]
    lines = [
        f"First {p['tasks']} tasks of each permuted sequence, every strategy in the same run as "
        f"naive fine-tuning (2 workers, one torch thread each). Time: training seconds per "
        f"task (last tenth of the tasks in brackets); memory: bytes held beyond the model after "
        f"the last task; ratios against naive (memory ratio counts the model too).",
    ]
    for d, table in result["datasets"].items():
        lines += [
            "",
            f"**{d}**",
            "",
            "| strategy | ms/task (last) | eval ms/task | memory | parameters | time ratio | "
            "memory ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for n, r in table.items():
            if "error" in r:
                lines.append(f"| {label(n)} | error: {r['error'][:80]} |" + " |" * 5)
                continue
            t = r["seconds_per_task"]
            lines.append(
                f"| {label(n)} | {1000 * t['mean']:.0f} ({1000 * t['last_tenth']:.0f}) | "
                f"{1000 * r['eval_seconds_per_task']:.1f} | {size(r['memory_bytes']['final'])} | "
                f"{r['parameters']['final']:,} | {r['ratio']['time']}x | "
                f"{r['ratio']['memory']}x |"
            )
    return "\n".join(lines)
