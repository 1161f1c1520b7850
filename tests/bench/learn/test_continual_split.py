from __future__ import annotations

import json

import pytest

from adaptd.adapters.continual import strategies
from bench.learn.continual import references, split


@pytest.fixture(scope="module")
def quick() -> dict:
    return split.run(quick=True, seed=0)


def test_quick_run_covers_both_scenarios_with_every_strategy(quick: dict) -> None:
    json.dumps(quick)
    assert set(quick["settings"]) == {"digits/task", "digits/class"}
    for setting in quick["settings"].values():
        assert set(setting["strategies"]) == set(strategies())
        for record in setting["strategies"].values():
            assert "error" not in record, record.get("error")
            assert record["tasks"] == 5 and len(record["matrix"]) == 5
        assert 0.0 <= setting["joint"]["average_accuracy"] <= 1.0
        assert setting["tuning"]
    # Task identity restricts the outputs, so naive task-incremental beats class-incremental.
    task = quick["settings"]["digits/task"]["strategies"]["naive"]["metrics"]
    cls = quick["settings"]["digits/class"]["strategies"]["naive"]["metrics"]
    assert task["average_accuracy"] > cls["average_accuracy"]


def test_published_references_come_with_their_source_and_differences(quick: dict) -> None:
    refs = quick["references"]
    assert refs["source"] == references.AVALANCHE and "9d761b2" in refs["source"]
    assert all(r["paper"] and r["setting"] for r in refs["split_mnist"])
    text = split.summary(quick)
    assert "Published split MNIST" in text and "MNIST (60,000" in text
    assert "| naive |" in text and "packnet †" in text
