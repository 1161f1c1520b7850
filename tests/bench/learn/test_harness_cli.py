from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.learn import harness
from bench.learn.harness.suite import Suite


def test_a_suite_runs_its_own_sections_into_its_own_block(
    tmp_path: Path, fake_suite: Suite
) -> None:
    suite = fake_suite
    out, docs = tmp_path / "fake.json", tmp_path / "fake.md"
    args = ["--quick", "--only", "speed", "--out", str(out), "--docs", str(docs)]
    assert harness.main(args, suite=suite) == 0
    assert list(json.loads(out.read_text())["sections"]) == ["speed"]
    assert "<!-- fake:start -->" in docs.read_text() and harness.START not in docs.read_text()
    with pytest.raises(SystemExit):
        harness.main(["--quick", "--only", "digits"], suite=suite)  # a learning section


def test_unknown_section_is_rejected() -> None:
    with pytest.raises(SystemExit):
        harness.main(["--only", "speed,nonsense", "--quick"])


def test_quick_run_of_every_section_merges_into_existing_json(tmp_path: Path) -> None:
    # The smoke test of `python -m bench.learn --quick` over every section written.
    out, docs = tmp_path / "learn.json", tmp_path / "benchmarks.md"
    legacy = {"result": {}, "seconds": 0.0, "date": "then", "quick": False}
    out.write_text(json.dumps({"date": "then", "sections": {"legacy": legacy}}))
    docs.write_text(f"# Benchmarks\n\n{harness.START}\nstale\n{harness.END}\n\nafter\n")
    only = ",".join(harness.SECTIONS)
    assert harness.main(["--quick", "--only", only, "--out", str(out), "--docs", str(docs)]) == 0
    report = json.loads(out.read_text())
    present = [s for s in harness.SECTIONS if harness.load_section(s) is not None]
    assert "speed" in present
    assert sorted(report["sections"]) == sorted([*present, "legacy"])
    assert report["machine"]["threads"] == 1
    text = docs.read_text()
    assert "stale" not in text
    assert text.startswith("# Benchmarks\n")
    assert text.rstrip().endswith("after")
    for name in present:
        assert f"### {name}" in text


def test_render_rewrites_the_docs_from_the_json_without_running(tmp_path: Path) -> None:
    out, docs = tmp_path / "learn.json", tmp_path / "benchmarks.md"
    report = {"date": "then", "machine": {"cpu": "Test CPU"}, "sections": {}}
    out.write_text(json.dumps(report))
    docs.write_text("# Benchmarks\n")
    assert harness.main(["--render", "--out", str(out), "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert "Machine: Test CPU" in text
    assert f"Not run yet: {', '.join(harness.SECTIONS)}." in text
    assert json.loads(out.read_text()) == report
