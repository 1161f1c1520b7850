from __future__ import annotations

import json
import math

from bench.learn.efficiency import runs
from bench.learn.efficiency.protocol import QUICK


def test_crossing_finds_the_first_size_and_interpolates_on_log_n() -> None:
    assert runs.crossing([5, 10, 20], [0.4, 0.3, 0.2], target=0.5) == {
        "n": 5,
        "n_interpolated": 5.0,
    }
    hit = runs.crossing([10, 1000], [1.0, 0.0], target=0.5)
    assert hit["n"] == 1000 and math.isclose(hit["n_interpolated"], 100.0)
    assert runs.crossing([10, 20], [1.0, 1.0], target=1.0)["n"] == 10
    assert runs.crossing([10, 20], [1.0, 0.9], target=0.5) is None


def test_quick_run_reports_targets_curve_and_ratios() -> None:
    result = runs.run(quick=True, seed=0)
    json.dumps(result)
    assert sorted(result["meta"], key=int) == ["5", "10"]
    assert [p["n"] for p in result["scratch"]] == QUICK["sizes"]
    assert all(p["lr"] in QUICK["lrs"] for p in result["scratch"])
    assert result["meta_source"].startswith("trained here")
    for ratio in result["ratios"].values():
        assert ("examples_ratio" in ratio) == ratio["reached"]
