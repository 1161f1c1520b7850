"""The policy section's Markdown: one row per algorithm and the tuned one."""

from __future__ import annotations

from typing import Any

__all__ = ["summary"]


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
