from __future__ import annotations

import json

from adaptd.adapters.continual import strategies
from bench.learn.continual import cost


def test_quick_run_gives_every_strategy_s_cost_relative_to_naive() -> None:
    result = cost.run(quick=True, seed=0)
    json.dumps(result)
    assert result["datasets"]
    for table in result["datasets"].values():
        assert set(table) == set(strategies())
        assert table["naive"]["ratio"] == {"time": 1.0, "memory": 1.0}
        for name, record in table.items():
            assert "error" not in record, (name, record.get("error"))
            assert record["ratio"]["time"] > 0
            assert record["ratio"]["memory"] >= 1.0  # the model itself at least
        assert table["replay"]["memory_bytes"]["final"] > 0
        assert table["progressive"]["parameters"]["final"] > table["naive"]["parameters"]["final"]
    text = cost.summary(result)
    assert "time ratio" in text and "| naive |" in text
