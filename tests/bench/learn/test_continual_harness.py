from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.learn import harness as learn_harness
from bench.learn.continual import harness


def test_markers_are_this_bench_s_own_and_replaced_in_place() -> None:
    assert harness.START != learn_harness.START and harness.END != learn_harness.END
    learn = f"# B\n\n{learn_harness.START}\nlearn\n{learn_harness.END}\n"
    first = harness.replace_between_markers(learn, "one")
    assert first.startswith(learn) and first.count(harness.START) == 1
    second = harness.replace_between_markers(first + "\ntail\n", "two")
    assert "one" not in second and "learn" in second  # the learning section is untouched
    assert second.index("two") < second.index("tail")
    assert harness.replace_between_markers(second, "two") == second


def test_module_constants_are_the_suite_s() -> None:
    suite = harness.SUITE
    assert (suite.sections, suite.package) == (harness.SECTIONS, harness.PACKAGE)
    assert (suite.start, suite.end) == (harness.START, harness.END)
    assert suite.default_out.name == "continual.json" and suite != learn_harness.LEARN


def test_render_lists_sections_not_run_yet() -> None:
    text = harness.render_markdown({"machine": {"cpu": "Test CPU"}, "sections": {}})
    assert text.startswith("## Continual-learning benchmarks\n")
    assert "Machine: Test CPU" in text
    assert f"Not run yet: {', '.join(harness.SECTIONS)}." in text


def test_unknown_section_is_rejected() -> None:
    with pytest.raises(SystemExit):
        harness.main(["--only", "market,nonsense", "--quick"])


def test_quick_run_merges_into_the_json_and_rewrites_only_its_docs_block(tmp_path: Path) -> None:
    out, docs = tmp_path / "continual.json", tmp_path / "benchmarks.md"
    legacy = {"result": {}, "seconds": 0.0, "date": "then", "quick": False}
    out.write_text(json.dumps({"date": "then", "sections": {"legacy": legacy}}))
    learn = f"{learn_harness.START}\nlearn\n{learn_harness.END}"
    docs.write_text(f"# Benchmarks\n\n{learn}\n\n{harness.START}\nstale\n{harness.END}\n\nafter\n")
    args = ["--quick", "--only", "market", "--out", str(out), "--docs", str(docs)]
    assert harness.main(args) == 0
    report = json.loads(out.read_text())
    assert sorted(report["sections"]) == ["legacy", "market"]
    assert report["sections"]["market"]["quick"] is True
    text = docs.read_text()
    assert "stale" not in text and learn in text and text.rstrip().endswith("after")
    assert "### market" in text and "quick mode: not representative" in text
    # --render rebuilds the block from the JSON alone.
    docs.write_text(f"{harness.START}\nstale\n{harness.END}\n")
    assert harness.main(["--render", "--out", str(out), "--docs", str(docs)]) == 0
    assert "### market" in docs.read_text() and "stale" not in docs.read_text()
