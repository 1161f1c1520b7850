from __future__ import annotations

import json

import pytest
import torch

from bench.learn import regimes
from bench.learn.classifiers import verdict


@pytest.fixture(scope="module")
def quick() -> dict:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return regimes.run(quick=True, seed=0)
    finally:
        torch.set_num_threads(previous)


def test_segments_are_split_by_series_without_overlap(quick: dict) -> None:
    segments = quick["segments"]
    for part, series in regimes.SPLIT.items():
        assert segments[part] and {s["series"] for s in segments[part]} == {series}
    labels = [{s["label"] for s in segments[part]} for part in ("train", "val", "test")]
    assert not (labels[0] & labels[1] or labels[0] & labels[2] or labels[1] & labels[2])
    # Enough held-out segments for the widest test episodes, and windows for 5 + 5 of each.
    assert len(segments["test"]) >= max(regimes.PROTOCOL["test_ways"])
    need = regimes.PROTOCOL["shots"] + regimes.PROTOCOL["n_query"]
    assert min(s["windows"] for part in segments.values() for s in part) >= need


def test_quick_run_reports_every_model_at_every_way(quick: dict) -> None:
    json.dumps(quick)
    assert set(quick["results"]) == {str(w) for w in regimes.PROTOCOL["test_ways"]}
    for table in quick["results"].values():
        assert tuple(table) == regimes.MODELS
        for model, r in table.items():
            assert r["episodes"] == regimes.QUICK["test_episodes"]
            assert 0.0 <= r["accuracy"] <= 1.0 and r["ci95"] >= 0.0
            assert ("updates" in r) == (model not in regimes.BASELINES)
    text = regimes.summary(quick)
    assert "| 1-NN, raw features |" in text and "the better baseline" in text


def _table(accuracies: dict[str, float], ci: float) -> dict:
    return {m: {"accuracy": a, "ci95": ci} for m, a in accuracies.items()}


def test_verdict_needs_a_gap_beyond_both_intervals() -> None:
    base = {"nearest_mean": 0.30, "nearest_neighbour": 0.25, "matching": 0.30, "relation": 0.2}
    result = {
        "results": {
            "5": _table({**base, "protonet": 0.40}, 0.02),
            "2": _table({**base, "nearest_mean": 0.60, "protonet": 0.63}, 0.02),
        }
    }
    found = verdict(result["results"], regimes.LABELS, unit="way")
    assert "5-way: ProtoNet (learned embedding) beats" in found
    assert "2-way: no learned model beats" in found
