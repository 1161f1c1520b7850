from __future__ import annotations

from bench.learn.harness import markdown, report
from bench.learn.harness.suite import LEARN, Suite


def test_markdown_follows_section_order_and_marks_quick_runs(section_package: str) -> None:
    result = report.run_sections(["speed"], quick=True, seed=1, package=section_package)
    result["sections"]["extra"] = {"result": {"value": 7}, "seconds": 1.5, "date": "d"}
    text = markdown.render_markdown(result, package=section_package)
    assert text.startswith("## Learning benchmarks\n")
    assert result["machine"]["cpu"] in text
    assert text.index("### speed") < text.index("### extra")  # known sections first
    assert "value is 11" in text
    assert "extra value is 7" in text
    assert "quick mode: not representative" in text
    not_run = [name for name in LEARN.sections if name != "speed"]
    assert f"Not run yet: {', '.join(not_run)}." in text


def test_replace_between_markers_appends_once_then_replaces_in_place() -> None:
    doc = "# Benchmarks\n\nintro\n"
    first = markdown.replace_between_markers(doc, "one")
    assert first.startswith(doc)
    assert first.count(LEARN.start) == 1
    second = markdown.replace_between_markers(first + "\ntail\n", "two")
    assert "one" not in second
    assert second.count(LEARN.start) == second.count(LEARN.end) == 1
    assert second.index("two") < second.index("tail")
    assert markdown.replace_between_markers(second, "two") == second


def test_a_suite_sets_title_order_and_markers(fake_suite: Suite) -> None:
    suite = fake_suite
    result = report.run_sections(["speed", "extra"], quick=False, seed=0, package=suite.package)
    text = markdown.render_markdown(result, suite=suite)
    assert text.startswith("## Fake benchmarks\n")
    assert "`make bench-fake` (`python -m fakebench`) from `docs/bench/fake.json`" in text
    assert text.index("### extra") < text.index("### speed")  # the suite's order
    assert "Not run yet: absent." in text
    doc = f"# B\n\n{LEARN.start}\nlearn\n{LEARN.end}\n"
    replaced = markdown.replace_between_markers(doc, "one", suite=suite)
    assert replaced.startswith(doc) and replaced.rstrip().endswith("<!-- fake:end -->")
    assert markdown.replace_between_markers(replaced, "one", suite=suite) == replaced
