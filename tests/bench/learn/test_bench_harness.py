from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.learn import harness

SECTION_SOURCE = """
def run(*, quick, seed):
    return {"value": seed * 10 + (1 if quick else 2)}


def summary(result):
    return f"value is {result['value']}"
"""


@pytest.fixture
def section_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real package ``fakebench`` with two sections, ``speed`` and ``extra``."""
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "speed.py").write_text(SECTION_SOURCE)
    (package / "extra.py").write_text(SECTION_SOURCE.replace("value is", "extra value is"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fakebench"
    for name in [m for m in sys.modules if m == "fakebench" or m.startswith("fakebench.")]:
        del sys.modules[name]


def test_missing_sections_are_skipped_and_said_so(section_package: str) -> None:
    messages: list[str] = []
    report = harness.run_sections(
        ["digits", "speed"], quick=True, seed=3, package=section_package, log=messages.append
    )
    assert list(report["sections"]) == ["speed"]
    entry = report["sections"]["speed"]
    assert entry["result"] == {"value": 31}
    assert entry["quick"] is True
    assert entry["seconds"] >= 0
    assert any("digits: skipped" in m and "fakebench.digits" in m for m in messages)
    assert report["seed"] == 3
    machine = report["machine"]
    assert machine["cores"] >= 1
    assert machine["cpu"]
    assert machine["threads"] >= 1


def test_a_module_without_run_is_an_error(tmp_path: Path, section_package: str) -> None:
    (tmp_path / "fakebench" / "broken.py").write_text("def summary(result):\n    return ''\n")
    with pytest.raises(ValueError, match=r"broken.*run"):
        harness.load_section("broken", section_package)


def test_merge_keeps_sections_not_rerun_and_takes_the_new_ones() -> None:
    old = {
        "date": "old",
        "machine": {"cpu": "a"},
        "sections": {"speed": {"result": {"v": 1}}, "digits": {"result": {"v": 2}}},
    }
    new = {"date": "new", "machine": {"cpu": "b"}, "sections": {"speed": {"result": {"v": 3}}}}
    merged = harness.merge(old, new)
    assert merged["date"] == "new"
    assert merged["machine"] == {"cpu": "b"}
    assert merged["sections"] == {"speed": {"result": {"v": 3}}, "digits": {"result": {"v": 2}}}
    assert harness.merge(None, new) == new


def test_markdown_follows_section_order_and_marks_quick_runs(section_package: str) -> None:
    report = harness.run_sections(["speed"], quick=True, seed=1, package=section_package)
    report["sections"]["extra"] = {"result": {"value": 7}, "seconds": 1.5, "date": "d"}
    text = harness.render_markdown(report, package=section_package)
    assert text.startswith("## Learning benchmarks\n")
    assert report["machine"]["cpu"] in text
    assert text.index("### speed") < text.index("### extra")  # known sections first
    assert "value is 11" in text
    assert "extra value is 7" in text
    assert "quick mode: not representative" in text
    not_run = [name for name in harness.SECTIONS if name != "speed"]
    assert f"Not run yet: {', '.join(not_run)}." in text


def test_replace_between_markers_appends_once_then_replaces_in_place() -> None:
    doc = "# Benchmarks\n\nintro\n"
    first = harness.replace_between_markers(doc, "one")
    assert first.startswith(doc)
    assert first.count(harness.START) == 1
    second = harness.replace_between_markers(first + "\ntail\n", "two")
    assert "one" not in second
    assert second.count(harness.START) == second.count(harness.END) == 1
    assert second.index("two") < second.index("tail")
    assert harness.replace_between_markers(second, "two") == second


def test_a_suite_sets_title_sections_markers_and_defaults(
    tmp_path: Path, section_package: str
) -> None:
    suite = harness.Suite(
        title="Fake benchmarks",
        command="make bench-fake",
        sections=("extra", "speed", "absent"),
        package=section_package,
        start="<!-- fake:start -->",
        end="<!-- fake:end -->",
        default_out=Path("docs/bench/fake.json"),
        default_docs=Path("docs/fake.md"),
        prog="python -m fakebench",
    )
    report = harness.run_sections(["speed", "extra"], quick=False, seed=0, package=suite.package)
    text = harness.render_markdown(report, suite=suite)
    assert text.startswith("## Fake benchmarks\n")
    assert "`make bench-fake` (`python -m fakebench`) from `docs/bench/fake.json`" in text
    assert text.index("### extra") < text.index("### speed")  # the suite's order
    assert "Not run yet: absent." in text
    doc = f"# B\n\n{harness.START}\nlearn\n{harness.END}\n"
    replaced = harness.replace_between_markers(doc, "one", suite=suite)
    assert replaced.startswith(doc) and replaced.rstrip().endswith("<!-- fake:end -->")
    assert harness.replace_between_markers(replaced, "one", suite=suite) == replaced
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


def test_run_parallel_gives_results_in_job_order_from_spawned_workers() -> None:
    import math

    assert harness.run_parallel(math.sqrt, [1.0, 4.0, 9.0], workers=2) == [1.0, 2.0, 3.0]
    assert harness.run_parallel(math.sqrt, [], workers=2) == []
    with pytest.raises(ValueError, match="workers"):
        harness.run_parallel(math.sqrt, [1.0], workers=0)
