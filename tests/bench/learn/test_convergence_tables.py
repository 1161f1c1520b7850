from __future__ import annotations

import copy

import pytest

from bench.learn.convergence import runs, tables
from bench.learn.convergence.protocol import QUICK

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def quick(one_torch_thread: None) -> dict:
    return runs.run(quick=True, seed=0)


def test_summary_reports_every_pool_and_the_smallest_m(quick: dict) -> None:
    text = tables.summary(quick)
    for m in QUICK["pools"]:
        assert f"| {m} |" in text
    assert "fresh every task" in text and "After 1 step:" in text and "After 10 steps:" in text
    assert "diverged" not in text  # a quick run's errors stay near the initial ones


def test_summary_says_when_diverged_tasks_dominate_a_mean(quick: dict) -> None:
    result = copy.deepcopy(quick)
    result["rows"][0]["test"]["10"].update(mean=3e14, ci=5e14, diverged=2, median=0.25)
    text = tables.summary(result)
    assert f"2 of {quick['test_tasks']} test tasks diverged" in text and "median 0.250" in text
    assert "3e+14 ± 5e+14" in text
