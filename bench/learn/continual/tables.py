"""Markdown pieces the sections' summaries share: the per-strategy table and its notes.

Strategies that pick weights by the task's identity at test time (their class attribute
``task_identity``) are marked with a dagger and :data:`DAGGER_NOTE` says why.

Examples
--------
>>> label("packnet"), label("naive")
('packnet †', 'naive')
>>> number(0.12345), number(float("nan")), size(3 << 20)
('0.123', '-', '3.0 MB')
>>> options_text({"lam": 100.0, "decay": 0.9, "max_tasks": None})
'lam=100, decay=0.9, max_tasks=None'
"""

from __future__ import annotations

import functools
import math
from typing import Any

from adaptd.adapters.continual import strategies

__all__ = [
    "DAGGER_NOTE",
    "label",
    "notes",
    "number",
    "options_text",
    "size",
    "strategy_table",
    "uses_task_identity",
]

DAGGER_NOTE = (
    "† picks its weights (column, mask) by the task's identity at test time: old tasks are "
    "kept by construction, and its class-incremental and permuted figures are "
    "task-incremental ones."
)


@functools.cache
def uses_task_identity(name: str) -> bool:
    """True when the strategy ``name`` picks weights by the task's identity at test time."""
    cls = strategies().get(name)
    return cls is not None and cls.task_identity


def label(name: str) -> str:
    """The strategy's name, with a dagger when it uses the task identity at test time."""
    return f"{name} †" if uses_task_identity(name) else name


def number(value: float | None, digits: int = 3) -> str:
    """``value`` rounded, "-" for None and NaN."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def size(n: int) -> str:
    """Bytes, human-readable."""
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MB"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def options_text(options: dict[str, Any]) -> str:
    """``k=v, ...`` of constructor options."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()
    )


def strategy_table(
    records: dict[str, dict[str, Any]], joint: dict[str, Any] | None, *, target: bool = True
) -> list[str]:
    """Rows of every strategy's :func:`.runs.run_strategy` record, then joint training's
    average accuracy; ``target``: a column saying whether the retention target is met."""
    head = (
        "| strategy | tasks | ACC | BWT | FWT | forgetting | earliest 10 %: score after → "
        "at end | retention, earliest 10 % mean (worst) | retention, all | memory | parameters "
        "| ms/task |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [head + (" target |" if target else ""), rule + (":-:|" if target else "")]
    blanks = " |" * (9 + target)
    for name, r in records.items():
        if "error" in r:
            lines.append(f"| {label(name)} | {r['tasks']} | error: {r['error'][:80]} |{blanks}")
            continue
        m, ret = r["metrics"], r["metrics"]["retention"]
        row = (
            f"| {label(name)} | {r['tasks']} | {number(m['average_accuracy'])} | "
            f"{number(m['backward_transfer'])} | {number(m['forward_transfer'])} | "
            f"{number(m['forgetting'])} | {number(r['earliest']['after'])} → "
            f"{number(r['earliest']['final'])} | {number(ret['earliest']['mean'])} "
            f"({number(ret['earliest']['worst'])}) | {number(ret['all']['mean'])} "
            f"({number(ret['all']['worst'])}) | {size(r['memory_bytes']['max'])} | "
            f"{r['parameters']['max']:,} | {1000 * r['seconds_per_task']['mean']:.0f} |"
        )
        lines.append(row + (f" {'yes' if r['target_met'] else 'no'} |" if target else ""))
    if joint is not None:
        lines.append(f"| joint (upper bound) | all | {number(joint['average_accuracy'])} |{blanks}")
    return lines


def notes(records: dict[str, dict[str, Any]], tuning: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences: the values chosen on validation, runs cut short and why, the dagger."""
    chosen = [f"{n} {options_text(t['chosen'])}" for n, t in tuning.items()]
    out = ["", "Chosen on validation: " + ("; ".join(chosen) or "nothing tuned") + "."]
    cut = [
        f"{n} ({r['plan']['reason']})"
        for n, r in records.items()
        if "plan" in r and not r.get("complete", True)
    ]
    if cut:
        out += ["", "Fewer tasks: " + "; ".join(cut) + "."]
    if any(uses_task_identity(n) for n in records):
        out += ["", DAGGER_NOTE]
    return out
