from __future__ import annotations

import pytest

from bench.learn.continual.harness import SUITE as CONTINUAL
from bench.learn.harness.report import load_section
from bench.learn.harness.suite import LEARN, Suite


@pytest.mark.parametrize("suite", [LEARN, CONTINUAL], ids=["learn", "continual"])
def test_every_section_of_a_suite_is_a_module_with_run_and_summary(suite: Suite) -> None:
    for name in suite.sections:
        assert load_section(name, suite.package) is not None, name


def test_suites_keep_their_own_markers_and_files() -> None:
    assert {LEARN.start, LEARN.end}.isdisjoint({CONTINUAL.start, CONTINUAL.end})
    assert LEARN.default_out != CONTINUAL.default_out
    assert LEARN.default_docs == CONTINUAL.default_docs  # one docs page, two blocks
