from __future__ import annotations

import json

import pytest

from adaptd.adapters.continual import strategies
from bench.learn.continual import permuted


@pytest.fixture(scope="module")
def quick() -> dict:
    return permuted.run(quick=True, seed=0)


def test_quick_run_reports_every_strategy_naive_and_joint_on_both_data_sets(quick: dict) -> None:
    json.dumps(quick)
    assert quick["target"] == 0.95 and quick["memory_budget"] > 0
    assert set(quick["datasets"]) == {"digits", "fashion_mnist"}
    names = set(strategies())
    for name, d in quick["datasets"].items():
        if not d["available"]:  # only Fashion-MNIST may be missing, and then says why
            assert name == "fashion_mnist" and d["reason"]
            continue
        assert set(d["strategies"]) == names
        assert next(iter(d["strategies"])) == "naive"
        for record in d["strategies"].values():
            assert "error" not in record, record.get("error")
            assert record["tasks"] == permuted.QUICK["tasks"]
            assert {"metrics", "memory_bytes", "parameters", "seconds_per_task", "plan"} <= set(
                record
            )
            assert record["complete"] is False or record["tasks"] == quick["protocol"]["tasks"]
        assert 0.0 <= d["joint"]["average_accuracy"] <= 1.0
        for name_, tuned in d["tuning"].items():
            assert tuned["chosen"] in tuned["grid"]
            assert len(tuned["validation"]) == len(tuned["grid"])
            assert d["strategies"][name_]["options"].items() >= tuned["chosen"].items()


def test_summary_has_a_row_per_strategy(quick: dict) -> None:
    text = permuted.summary(quick)
    for name in strategies():
        assert f"| {name}" in text
    assert "joint (upper bound)" in text and "Chosen on validation" in text


def test_a_run_predicted_over_budget_is_cut_and_says_why() -> None:
    config = {**permuted.PROTOCOL, **permuted.QUICK, "tasks": 30, "pilot_tasks": 3}
    config["budget_seconds"] = 1e-6
    job = {
        "job": "run",
        "setting": "digits",
        "strategy": "naive",
        "options": {},
        "config": config,
        "seed": 0,
        "quick": False,
    }
    record = permuted._job(job)
    assert record["tasks"] == 10 and record["complete"] is False
    assert "over the budget" in record["plan"]["reason"]
    assert record["target_met"] is False  # never on a cut sequence
    assert set(record["plan"]["predicted_seconds"]) == {"10", "20", "30"}
