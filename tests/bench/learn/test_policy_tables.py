"""The daemon-policy section's Markdown."""

from __future__ import annotations

from bench.learn.policy import tables

ROW = {
    "validation_adapted_mse": 1.0,
    "test": {
        k: {"mean": 1.0, "ci95": 0.1} for k in ("adapted", "no_adaptation", "scratch", "zero")
    },
    "test_gain_vs_no_adaptation": {"mean": 0.0, "ci95": 0.1},
    "best_iteration": 20,
    "meta_update_ms_median": 2.0,
    "adapt_ms_p50": 0.5,
    "adapt_ms_p99": 0.9,
    "tasks": {"train": 64, "validation": 16, "test": 16},
    "iterations": 40,
    "eval_every": 20,
}


def test_summary_has_a_row_per_algorithm_and_the_tuned_one() -> None:
    result = {
        "rows": [{**ROW, "algorithm": name} for name in ("maml", "reptile")],
        "chosen_on_validation": "reptile",
        "tuning": {"best": {"inner_lr": 0.05, "inner_steps": 3, "meta_lr": 0.1}, "trials": 3},
        "tuned": {**ROW, "algorithm": "reptile"},
    }
    text = tables.summary(result)
    assert "| maml | 1.000 | 1.000 ± 0.100 |" in text and "| reptile |" in text
    assert "| reptile, tuned (inner lr 0.05, 3 steps, meta lr 0.1) |" in text
    assert "**reptile**" in text and "64 overlapping training tasks" in text
