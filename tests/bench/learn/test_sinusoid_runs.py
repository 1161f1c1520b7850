from __future__ import annotations

import json

from bench.learn.sinusoid import runs
from bench.learn.sinusoid.protocol import FINE_TUNE_LRS, LEARNERS, QUICK


def test_quick_run_covers_every_learner_and_the_reference_checks() -> None:
    result = runs.run(quick=True, seed=0)
    json.dumps(result)
    found = result["runs"]
    assert [r["learner"] for r in found] == list(LEARNERS)
    for r in found:
        assert sorted(r["mse"], key=int) == ["0", "1", "10"]
        assert r["mse"]["1"]["n"] == QUICK["test_tasks"]
        assert "state" not in r  # tensors stay out of the JSON
    tuned = next(r for r in found if r["learner"] == "pretrained")["tuned"]
    assert {tuned["1"]["lr"], tuned["10"]["lr"]} <= set(FINE_TUNE_LRS)
    checks = {c["check"]: c for c in result["checks"]}
    assert set(checks) == {
        "maml, K = 5, 1 step(s)",
        "maml, K = 5, 10 step(s)",
        "metasgd below maml, K = 5, 1 step",
    }


def test_reference_checks_compare_lower_ci_end_with_the_reference() -> None:
    assert runs.passes({"mean": 0.32, "half_width": 0.02}, 0.31)
    assert not runs.passes({"mean": 0.34, "half_width": 0.02}, 0.31)
