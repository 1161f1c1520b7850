from __future__ import annotations

import json

import torch

from adaptd.daemon.config.settings import FeatureSettings
from adaptd.daemon.core.features import feature_names
from bench.learn.speed import runs


def test_quick_run_reports_every_implementation_in_agreement() -> None:
    torch.set_num_threads(1)
    result = runs.run(quick=True, seed=0)
    json.dumps(result)
    assert result["ours"].endswith(".MAML")
    expected = {"ours", "ours_func", "loop", "hand_batched"}
    if "learn2learn" not in result["unavailable"]:
        expected.add("learn2learn")
    for steps in ("1", "5"):
        timings = result["meta_train_ms"][steps]
        assert set(timings) == expected
        assert all(0 < t["p10"] <= t["median"] <= t["p90"] for t in timings.values())
        assert result["ratio_to_ours"][steps]["ours"] == 1.0
        assert max(result["meta_gradient_max_rel_diff"][steps].values()) < 1e-4
        assert set(result["adapt_ms"][steps]) == expected - {"ours_func", "hand_batched"}
    daemon = result["daemon_adapt"]
    assert daemon["in_dim"] == len(feature_names(FeatureSettings()))
    assert sorted(daemon["ms"], key=int) == ["5", "20", "50"]
    assert all(0 < t["p50"] <= t["p99"] for t in daemon["ms"].values())
