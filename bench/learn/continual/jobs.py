"""Tune on validation, then run on test, over spawned workers: the flow every section shares.

A section names its settings (data set and scenario, for example ``"digits/class"``) and gives
a module-level ``job(spec) -> dict`` that does the work in a worker: ``spec["job"]`` is
``"tune"`` (run ``spec["options"]`` on the setting's validation sequence and return
``{"score": ...}``), ``"run"`` (the benchmark run of one strategy) or a section's own kind
(joint training). :func:`tune_then_run` runs every tuning job, keeps each strategy's best grid
point per setting (:func:`.configs.choose`), then runs the extra jobs and every strategy with
its chosen options, slow strategies first so the pool does not end waiting on one of them;
:func:`tune_then_run_section` does that for every registered strategy with one joint-training
job per setting. :func:`run_on_tasks` is the job of a section whose tasks are built in memory,
:func:`dataset_status` says whether a data set is there and where it comes from.

Examples
--------
>>> slow_first(["naive", "si", "gem", "progressive"])
['progressive', 'gem', 'naive', 'si']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adaptd.adapters.continual import ContinualTask, strategies

from ..harness.parallel import run_parallel
from . import configs, data
from .fashion import ensure_fashion
from .joint import ConcatenatedTasks, run_joint
from .runs import Setup, run_strategy

__all__ = [
    "SLOW",
    "dataset_status",
    "run_on_tasks",
    "slow_first",
    "strategy_names",
    "tune_score",
    "tune_then_run",
    "tune_then_run_section",
]

SLOW = ("progressive", "generative", "gem", "growth", "ewc", "agem", "coreset", "packnet")
"""Strategies that take longest, in that order (measured on the permuted sequence)."""

Job = Callable[[dict[str, Any]], dict[str, Any]]


def slow_first(names: Sequence[str]) -> list[str]:
    """``names`` with the slow strategies (:data:`SLOW`) first."""
    return [*(n for n in SLOW if n in names), *(n for n in names if n not in SLOW)]


def strategy_names() -> list[str]:
    """Every registered strategy, naive first."""
    found = strategies()
    return ["naive", *sorted(n for n in found if n != "naive")]


def dataset_status(name: str) -> tuple[dict[str, Any], data.Dataset | None]:
    """``({"available": True, "source": ...}, images)`` when data set ``name`` loads (after
    installing Fashion-MNIST's package where it can), else ``({"available": False, "reason":
    ...}, None)``."""
    note = ensure_fashion() if name == "fashion_mnist" else "bundled with scikit-learn"
    try:
        images = data.load(name)
    except OSError as error:
        return {"available": False, "reason": f"{error}; {note}"}, None
    return {"available": True, "source": note}, images


def tune_then_run_section(
    job: Job,
    settings: Sequence[str],
    config: dict[str, Any],
    *,
    quick: bool,
    seed: int,
    kind: str,
    criterion: str,
    higher_is_better: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """:func:`tune_then_run` of every registered strategy (:func:`strategy_names`) with the
    section's ``config`` in every job spec and its ``workers``, plus one ``"joint"`` job per
    setting: ``(tuning, records, joints)``, ``joints`` in the order of ``settings``."""
    return tune_then_run(
        job,
        settings,
        strategy_names(),
        kind=kind,
        base={"config": config},
        quick=quick,
        seed=seed,
        workers=config["workers"],
        higher_is_better=higher_is_better,
        criterion=criterion,
        extra=[{"job": "joint", "setting": s} for s in settings],
    )


def run_on_tasks(
    job: dict[str, Any], tasks: Sequence[ContinualTask], setup: Setup, **options: Any
) -> dict[str, Any]:
    """The work of ``job`` on tasks built in memory: joint training on all of them, a tuning
    run (:func:`tune_score`) or a benchmark run that keeps its accuracy matrix; ``options`` go
    to :func:`.runs.run_strategy`."""
    if job["job"] == "joint":
        return run_joint(ConcatenatedTasks(tasks), tasks, setup)
    record = run_strategy(
        job["strategy"], job["options"], tasks, setup, keep_matrix=job["job"] == "run", **options
    )
    return tune_score(record) if job["job"] == "tune" else record


def tune_score(record: dict[str, Any]) -> dict[str, Any]:
    """What a tuning job returns of its run: the final average score (higher or lower is
    better as the section says), its seconds and its error, if any."""
    score = record.get("metrics", {}).get("average_accuracy")
    return {"score": score, "seconds": record.get("seconds"), "error": record.get("error")}


def tune_then_run(
    job: Job,
    settings: Sequence[str],
    names: Sequence[str],
    *,
    kind: str,
    base: dict[str, Any],
    quick: bool,
    seed: int,
    workers: int,
    higher_is_better: bool,
    criterion: str,
    extra: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """``(tuning, records, extra_results)``: per setting, what tuning chose for each tuned
    strategy and each strategy's benchmark record; the results of the ``extra`` jobs.

    Every job spec holds ``base`` (the section's configuration, seed, quick flag) plus
    ``job``, ``setting``, ``strategy`` and ``options``.
    """
    common = {**base, "seed": seed, "quick": quick}

    def options(name: str, tuned: dict[str, Any] | None) -> dict[str, Any]:
        return configs.options(name, kind, tuned, quick=quick, seed=seed)

    tune_jobs = [
        {**common, "job": "tune", "setting": s, "strategy": n, "options": options(n, o)}
        for s in settings
        for n in names
        for o in (configs.grid(n, kind, quick=quick) if _tuned(n, kind, quick) else [])
    ]
    tuned = run_parallel(job, tune_jobs, workers)
    tuning: dict[str, dict[str, Any]] = {s: {} for s in settings}
    for s in settings:
        for n in names:
            rows = [
                (j, r)
                for j, r in zip(tune_jobs, tuned, strict=True)
                if j["setting"] == s and j["strategy"] == n
            ]
            if rows:
                grid = configs.grid(n, kind, quick=quick)
                tuning[s][n] = configs.tuning_record(
                    n,
                    grid,
                    [_score(r) for _, r in rows],
                    higher_is_better=higher_is_better,
                    criterion=criterion,
                )
    run_jobs = [
        {
            **common,
            "job": "run",
            "setting": s,
            "strategy": n,
            "options": options(n, tuning[s].get(n, {}).get("chosen")),
        }
        for n in slow_first(names)
        for s in settings
    ]
    extras = [{**common, **e} for e in extra]
    results = run_parallel(job, [*extras, *run_jobs], workers)
    records: dict[str, dict[str, Any]] = {s: {} for s in settings}
    for spec, result in zip(run_jobs, results[len(extras) :], strict=True):
        records[spec["setting"]][spec["strategy"]] = result
    ordered = {s: {n: records[s][n] for n in names} for s in settings}
    return tuning, ordered, list(results[: len(extras)])


def _tuned(name: str, kind: str, quick: bool) -> bool:
    return len(configs.grid(name, kind, quick=quick)) > 1


def _score(result: dict[str, Any]) -> float:
    value = result.get("score")
    return float("nan") if value is None else float(value)
