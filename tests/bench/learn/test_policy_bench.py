"""The daemon-policy benchmark section, in quick mode: its data, tasks and report."""

from __future__ import annotations

import numpy as np
import pytest

from bench.learn import policy


def test_series_tasks_are_consecutive_windows_with_the_latest_held_out() -> None:
    x = np.arange(60, dtype=np.float32).reshape(30, 2)
    y = np.arange(30, dtype=np.float32)
    tasks = policy.series_tasks(x, y, shots=10, query=4, stride=10)
    assert len(tasks) == 3
    first = tasks[0]
    assert first.support_y.tolist() == list(range(6))
    assert first.query_y.tolist() == [6.0, 7.0, 8.0, 9.0]
    assert tasks[2].query_y.tolist()[-1] == 29.0


def test_the_daemon_examples_of_a_real_series() -> None:
    x, y = policy.series_examples("apple")
    assert x.ndim == 2 and x.shape[0] == y.shape[0] > 1000
    assert np.isfinite(x).all() and np.isfinite(y).all()


@pytest.mark.timeout(120)
def test_a_quick_run_reports_every_algorithm_chosen_on_validation() -> None:
    result = policy.run(quick=True, seed=0)
    rows = {r["algorithm"]: r for r in result["rows"]}
    assert set(rows) == set(policy.ALGORITHMS)
    best = min(rows.values(), key=lambda r: r["validation_adapted_mse"])
    assert result["chosen_on_validation"] == best["algorithm"]
    for r in rows.values():
        assert set(r["test"]) == {"adapted", "no_adaptation", "scratch", "zero"}
        assert r["adapt_ms_p50"] > 0 and r["meta_update_ms_median"] > 0
    text = policy.summary(result)
    assert all(name in text for name in policy.ALGORITHMS)
