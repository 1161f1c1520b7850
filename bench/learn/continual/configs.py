"""Per-strategy hyperparameters of the continual benchmarks, and how the tunable one is chosen.

:data:`TABLE` holds, per strategy name, the constructor options every setting uses, those of
one kind of setting ("permuted", "split", "market"), how the shared memory budget maps onto its
arguments, the grid of its tunable value(s), how its training cost grows with the tasks seen
(for the time plan of :mod:`.budget`) and an upper bound on the tasks it is run on. A strategy
registered in ``adaptd.adapters.continual`` without an entry runs with its defaults, untuned,
and says so.

Memory budgets (:data:`MEMORY`, examples held) are the same for every strategy that stores
examples: experience replay, core sets and A-GEM hold ``M`` examples; GEM keeps
``M // G`` examples for each of its ``G`` most recent tasks. Generative replay holds a VAE
instead (its parameters count as its memory), progressive networks, PackNet and growth hold
nothing beyond the model (their cost is the model), and the regularisers hold importances and
anchors (a few copies of the weights).

The tunable value is chosen on validation data only (:func:`choose`): each grid point is run
on a validation sequence built from the training images alone (the section says which), and
the point with the best final average accuracy (lowest mean squared error for regression) is
kept; ties go to the earlier grid point.

Examples
--------
>>> [o["lam"] for o in grid("ewc", "permuted")][:3]
[0.01, 0.1, 1.0]
>>> options("gem", "permuted", {"margin": 0.5})["memory_per_task"]
200
>>> choose([{"lam": 1}, {"lam": 10}], [0.5, 0.7], higher_is_better=True)
1
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MEMORY",
    "TABLE",
    "Entry",
    "choose",
    "entry",
    "grid",
    "options",
    "tuning_record",
    "unknown_options",
]

MEMORY: dict[str, int] = {"permuted": 2000, "split": 200, "market": 200}
"""Examples a memory-based strategy may hold, per kind of setting (the same for all of them)."""

GEM_TASKS: dict[str, int | None] = {"permuted": 10, "split": None, "market": 10}
"""Past tasks GEM constrains (None: all; the split sequences have 5)."""


def _capacity(kind: str) -> dict[str, Any]:
    return {"capacity": MEMORY[kind]}


def _gem_memory(kind: str) -> dict[str, Any]:
    tasks = GEM_TASKS[kind] or 5
    return {"memory_per_task": MEMORY[kind] // tasks, "max_tasks": GEM_TASKS[kind]}


@dataclass(frozen=True)
class Entry:
    """How one strategy is configured in the benchmarks."""

    options: Mapping[str, Any] = field(default_factory=dict)
    """Constructor arguments of every setting."""
    by_kind: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Extra arguments per kind of setting ("permuted", "split", "market")."""
    memory: Callable[[str], dict[str, Any]] | None = None
    """Arguments that spend the kind's memory budget (:data:`MEMORY`)."""
    tune: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    """Grid of the tunable value(s): every combination is tried."""
    growth: float = 0.0
    """Exponent ``k`` of the training time per task, ``a + b * i ** k`` after ``i`` tasks
    (0: bounded), used to extrapolate a pilot run (:mod:`.budget`)."""
    max_tasks: int | None = None
    """Most tasks of the long permuted sequence it is run on (None: as many as the time
    budget allows)."""
    quick: Mapping[str, Any] = field(default_factory=dict)
    """Arguments that make it cheap for ``--quick`` runs."""
    note: str = ""


TABLE: dict[str, Entry] = {
    "naive": Entry(note="plain fine-tuning, the lower bound"),
    "ewc": Entry(
        options={"max_examples": 256},
        by_kind={"permuted": {"max_tasks": 10}},
        tune={"lam": (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)},
        note="one penalty per task; on the long sequence only the 10 most recent (bounded)",
    ),
    "online_ewc": Entry(
        options={"max_examples": 256},
        tune={
            "lam": (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0),
            "decay": (0.9, 1.0),
        },
    ),
    "si": Entry(tune={"c": (1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0)}),
    "mas": Entry(options={"max_examples": 256}, tune={"lam": (1e-3, 0.01, 0.1, 1.0, 10.0, 100.0)}),
    "lwf": Entry(tune={"alpha": (0.5, 1.0, 2.0, 4.0)}),
    "replay": Entry(memory=_capacity, tune={"weight": (0.5, 1.0, 2.0, 4.0)}),
    "coreset": Entry(memory=_capacity, tune={"weight": (0.5, 1.0, 2.0, 4.0)}),
    "agem": Entry(memory=_capacity),
    "gem": Entry(memory=_gem_memory, tune={"margin": (0.0, 0.5, 1.0)}),
    "generative": Entry(
        by_kind={
            "permuted": {"likelihood": "bernoulli"},
            "split": {"likelihood": "bernoulli"},
            "market": {"likelihood": "gaussian"},
        },
        quick={"epochs": 1},
        note="a VAE of the inputs instead of stored examples",
    ),
    "progressive": Entry(
        growth=2.0,
        max_tasks=200,
        note="a column per task, laterals from every earlier column: the model grows "
        "quadratically (0.9 GB at 200 columns of this network)",
    ),
    "packnet": Entry(tune={"prune": (0.5, 0.75, 0.9)}),
    "growth": Entry(
        options={"max_hidden": 200},
        tune={"prune": (0.5, 0.75, 0.9)},
        max_tasks=500,
        note="PackNet that widens its hidden layers, at most to 200 units; its cost grows "
        "with its width over the first hundred tasks, past what a 12-task pilot sees, so the "
        "long sequence is capped at 500 tasks",
    ),
}
"""Strategy name -> its configuration."""


def entry(name: str) -> Entry:
    """The table's entry for ``name`` (an empty one, defaults untuned, when it has none)."""
    return TABLE.get(name, Entry(note="no entry in configs.TABLE: defaults, untuned"))


def options(
    name: str,
    kind: str,
    tuned: Mapping[str, Any] | None = None,
    *,
    quick: bool = False,
    seed: int | None = None,
) -> dict[str, Any]:
    """Constructor arguments of ``name`` in a setting of ``kind``, with the tuned values;
    ``seed`` is passed to strategies whose constructor takes one."""
    if kind not in MEMORY:
        raise ValueError(f"kind must be one of {sorted(MEMORY)}, got {kind!r}")
    e = entry(name)
    out = {**e.options, **e.by_kind.get(kind, {})}
    if e.memory is not None:
        out.update(e.memory(kind))
    if quick:
        out.update(e.quick)
    if seed is not None and "seed" in _parameters(name):
        out["seed"] = seed
    return {**out, **(tuned or {})}


def unknown_options(name: str, kind: str) -> list[str]:
    """Configured arguments the registered strategy's constructor does not take."""
    accepted = _parameters(name)
    every = {**options(name, kind, quick=True), **options(name, kind)}
    for combo in grid(name, kind):
        every.update(combo)
    return sorted(k for k in every if k not in accepted)


def _parameters(name: str) -> set[str]:
    from adaptd.adapters.continual import strategies

    return set(inspect.signature(strategies()[name].__init__).parameters) - {"self"}


def grid(name: str, kind: str, *, quick: bool = False) -> list[dict[str, Any]]:
    """The tunable values to try (``[{}]`` when nothing is tuned); ``quick``: the first two
    values of each."""
    tune = entry(name).tune
    keys = list(tune)
    values = [list(tune[k])[:2] if quick else list(tune[k]) for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def choose(
    candidates: Sequence[Mapping[str, Any]],
    scores: Sequence[float],
    *,
    higher_is_better: bool,
) -> int:
    """Index of the best validation score (NaN and failed runs never win; ties: the first)."""
    if len(candidates) != len(scores) or not candidates:
        raise ValueError(
            f"candidates and scores must be non-empty and equal in length, got "
            f"{len(candidates)} and {len(scores)}"
        )
    sign = 1.0 if higher_is_better else -1.0
    keyed = [sign * s if math.isfinite(s) else -math.inf for s in scores]
    return max(range(len(keyed)), key=lambda i: (keyed[i], -i))


def tuning_record(
    name: str,
    candidates: Sequence[Mapping[str, Any]],
    scores: Sequence[float],
    *,
    higher_is_better: bool,
    criterion: str,
) -> dict[str, Any]:
    """What tuning ``name`` tried and chose, JSON-able."""
    best = choose(candidates, scores, higher_is_better=higher_is_better)
    return {
        "tuned": sorted(entry(name).tune),
        "grid": [dict(c) for c in candidates],
        "validation": [round(s, 4) if math.isfinite(s) else None for s in scores],
        "chosen": dict(candidates[best]),
        "criterion": criterion,
        "note": entry(name).note,
    }
