"""The daemon-policy section's run, in quick mode."""

from __future__ import annotations

import pytest

from bench.learn.policy import runs
from bench.learn.policy.protocol import ALGORITHMS


@pytest.mark.timeout(120)
def test_a_quick_run_reports_every_algorithm_chosen_on_validation() -> None:
    result = runs.run(quick=True, seed=0)
    rows = {r["algorithm"]: r for r in result["rows"]}
    assert set(rows) == set(ALGORITHMS)
    best = min(rows.values(), key=lambda r: r["validation_adapted_mse"])
    assert result["chosen_on_validation"] == best["algorithm"]
    for r in rows.values():
        assert set(r["test"]) == {"adapted", "no_adaptation", "scratch", "zero"}
        assert r["adapt_ms_p50"] > 0 and r["meta_update_ms_median"] > 0
