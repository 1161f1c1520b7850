"""The Python examples in the docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Examples that need a running service are shown, not run.
RUNNABLE = ["adapters.md"]


def _examples() -> list[tuple[str, int, str]]:
    out = []
    for name in RUNNABLE:
        for i, code in enumerate(BLOCK.findall((DOCS / name).read_text())):
            out.append((name, i, code))
    return out


@pytest.mark.parametrize(("name", "index", "code"), _examples(), ids=lambda v: str(v)[:20])
def test_doc_example_runs(name: str, index: int, code: str) -> None:
    exec(compile(code, f"{name}[{index}]", "exec"), {"__name__": "__doc_example__"})
