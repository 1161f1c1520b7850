from __future__ import annotations

from pathlib import Path

import pytest

from bench.learn.harness import report


def test_missing_sections_are_skipped_and_said_so(section_package: str) -> None:
    messages: list[str] = []
    result = report.run_sections(
        ["digits", "speed"], quick=True, seed=3, package=section_package, log=messages.append
    )
    assert list(result["sections"]) == ["speed"]
    entry = result["sections"]["speed"]
    assert entry["result"] == {"value": 31}
    assert entry["quick"] is True
    assert entry["seconds"] >= 0
    assert any("digits: skipped" in m and "fakebench.digits" in m for m in messages)
    assert result["seed"] == 3
    machine = result["machine"]
    assert machine["cores"] >= 1
    assert machine["cpu"]
    assert machine["threads"] >= 1


def test_a_module_without_run_is_an_error(tmp_path: Path, section_package: str) -> None:
    (tmp_path / "fakebench" / "broken.py").write_text("def summary(result):\n    return ''\n")
    with pytest.raises(ValueError, match=r"broken.*run"):
        report.load_section("broken", section_package)


def test_merge_keeps_sections_not_rerun_and_takes_the_new_ones() -> None:
    old = {
        "date": "old",
        "machine": {"cpu": "a"},
        "sections": {"speed": {"result": {"v": 1}}, "digits": {"result": {"v": 2}}},
    }
    new = {"date": "new", "machine": {"cpu": "b"}, "sections": {"speed": {"result": {"v": 3}}}}
    merged = report.merge(old, new)
    assert merged["date"] == "new"
    assert merged["machine"] == {"cpu": "b"}
    assert merged["sections"] == {"speed": {"result": {"v": 3}}, "digits": {"result": {"v": 2}}}
    assert report.merge(None, new) == new
