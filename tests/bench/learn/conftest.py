"""Fixtures of the benchmark tests: a package of fake sections, and one torch thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.learn.harness.suite import Suite

SECTION_SOURCE = """
def run(*, quick, seed):
    return {"value": seed * 10 + (1 if quick else 2)}


def summary(result):
    return f"value is {result['value']}"
"""


@pytest.fixture
def section_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
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


@pytest.fixture
def fake_suite(section_package: str) -> Suite:
    """A suite of ``fakebench``'s sections in its own order, with a section not written yet."""
    return Suite(
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


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread: two on a shared 2-core machine make training runs many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
