from __future__ import annotations

import copy

from bench.learn import sinusoid
from bench.learn.sinusoid import tables


def test_summary_has_a_row_per_learner_and_the_checks() -> None:
    result = sinusoid.run(quick=True, seed=0)
    text = tables.summary(result)
    for name in ("maml", "fomaml", "reptile", "metasgd", "anil", "pretrained"):
        assert f"| {name}" in text
    assert "| pretrained, lr chosen on validation |" in text
    assert "| check | reference | ours |" in text
    blown = copy.deepcopy(result)
    blown["runs"][0]["mse"]["1"].update(mean=3e14, half_width=5e14, diverged=2)
    text = tables.summary(blown)
    assert "3.0e+14 ± 5.0e+14 (2 of" in text
