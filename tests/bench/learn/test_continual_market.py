from __future__ import annotations

import json

import numpy as np
import pytest

from adaptd.adapters.continual import strategies
from bench.learn.continual import market


@pytest.fixture(scope="module")
def quick() -> dict:
    return market.run(quick=True, seed=0)


def test_regime_tasks_are_in_time_order_and_test_on_the_later_part() -> None:
    tasks, segments = market.regime_tasks(validation=False)
    held, _ = market.regime_tasks(validation=True)
    dates = [s["first_date"] for s in segments]
    assert dates == sorted(dates) and len(tasks) == len(segments) == len(held)
    for task, check, seg in zip(tasks, held, segments, strict=True):
        assert len(task.train_y) == seg["train"] and len(task.test_y) == seg["test"]
        assert abs(seg["test"] / (seg["train"] + seg["test"]) - 0.3) < 0.02
        # Validation: the same training windows, its own test being their later part.
        n = len(check.train_y) + len(check.test_y)
        assert n == len(task.train_y)
        assert np.allclose(check.test_y.numpy(), task.train_y[len(check.train_y) :].numpy())
        assert float(task.train_y.abs().max()) <= market.CLIP
        assert seg["zero_mse"] == round(float((task.test_y**2).mean()), 4)


def test_quick_run_reports_mse_retention_with_and_without_protection(quick: dict) -> None:
    json.dumps(quick)
    assert len(quick["segments"]) == market.QUICK["tasks"]
    assert set(quick["strategies"]) == set(strategies())
    for name, record in quick["strategies"].items():
        assert "error" not in record, (name, record.get("error"))
        assert record["target_met"] is False  # the target is for accuracies, not MSEs
        assert len(record["matrix"]) == market.QUICK["tasks"]
        early = market.early_regimes(record, [s["zero_mse"] for s in quick["segments"]], 0.1)
        assert early["tasks"] == 1 and early["mse_final"] > 0
    for tuned in quick["tuning"].values():  # lower validation MSE wins
        scores = [s for s in tuned["validation"] if s is not None]
        assert tuned["validation"][tuned["grid"].index(tuned["chosen"])] == min(scores)
    text = market.summary(quick)
    assert "| naive |" in text and "Zero forecast" in text
