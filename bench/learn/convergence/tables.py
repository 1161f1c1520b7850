"""The convergence section's Markdown: the table per pool size, the smallest M within the
tolerance against the design's target, and the fresh-task training curve."""

from __future__ import annotations

from typing import Any

import numpy as np

from .protocol import DIVERGED

__all__ = ["summary"]


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
