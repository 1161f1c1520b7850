from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import inner as bench_inner


def test_run_reports_both_backends_ratios_and_the_machine() -> None:
    threads = torch.get_num_threads()
    result = bench_inner.run(in_dim=3, hidden=(4,), shots=2, steps=2, repeats=3, threads=1)
    assert torch.get_num_threads() == threads  # restored
    assert result["config"] == {
        "in_dim": 3,
        "hidden": [4],
        "shots": 2,
        "steps": 2,
        "repeats": 3,
        "threads": 1,
    }
    for backend in ("autograd", "func"):
        for what in ("adapt_ms", "grad_ms"):
            timing = result["backends"][backend][what]
            assert 0 < timing["p50"] <= timing["p99"]
    ratio = result["ratio_func_over_autograd"]
    expected = result["backends"]["func"]["adapt_ms"]["p50"]
    assert ratio["adapt_ms_p50"] == pytest.approx(
        expected / result["backends"]["autograd"]["adapt_ms"]["p50"]
    )
    assert result["numpy_predict_us"]["p50"] > 0
    assert result["machine"]["torch"] == torch.__version__
    assert result["machine"]["cpu_count"] >= 1
    text = bench_inner.format_result(result)
    assert "autograd" in text
    assert "func/autograd" in text
    json.dumps(result)  # plain data


def test_main_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench" / "inner.json"
    assert bench_inner.main(["--repeats", "2", "--out", str(out)]) == 0
    assert "inner-loop benchmark" in capsys.readouterr().out
    assert json.loads(out.read_text())["config"]["repeats"] == 2


@pytest.mark.parametrize(
    ("kwargs", "named"), [({"repeats": 0}, "repeats"), ({"threads": 0}, "threads")]
)
def test_invalid_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        bench_inner.run(**kwargs)
