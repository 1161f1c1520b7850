from __future__ import annotations

import copy

from bench.learn.efficiency import runs, tables


def test_summary_has_the_targets_the_curve_and_the_ratios() -> None:
    result = runs.run(quick=True, seed=0)
    text = tables.summary(result)
    assert "| 5 |" in text and "10x target" in text
    never = copy.deepcopy(result)
    never["ratios"]["5"] = {"reached": False, "examples_ratio_above": 4.0}
    assert "| 5 | never within n = 20 | > 4x | | met |" in tables.summary(never)
