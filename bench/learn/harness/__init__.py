"""The learning-benchmark harness: runs sections, keeps their results as JSON, writes the docs.

A section is a module ``bench.learn.<name>`` with ``run(*, quick: bool, seed: int)
-> dict`` (JSON-able) and ``summary(result: dict) -> str`` (markdown). They run in the order of
:data:`SECTIONS`; a section whose module does not exist yet is skipped and reported as such
(:mod:`.report`, which also describes the JSON report).

With ``--only``, the sections run are merged into the existing file and the others are kept.
The docs section between :data:`START` and :data:`END` in ``docs/benchmarks.md`` is regenerated
from the JSON (appended at the end when the markers are missing; :mod:`.markdown`).

Another suite of benchmarks (``bench.learn.continual``) reuses this harness with its
own :class:`~.suite.Suite`: sections, package, docs markers, title, default paths and program
name; :data:`LEARN` is the learning benchmarks' suite and the default everywhere. Sections
spread their runs over worker processes with :func:`~.parallel.run_parallel`.

Run it with ``python -m bench.learn [--quick] [--only a,b] [--out FILE.json]
[--docs FILE.md] [--seed N] [--threads N] [--render]`` (:mod:`.cli`); ``--render`` only
regenerates the docs from the JSON. Without ``--quick``, ``--out`` and ``--docs`` default to
``docs/bench/learn.json`` and ``docs/benchmarks.md``; a ``--quick`` run writes only what it is
told to.

Examples
--------
>>> SECTIONS == LEARN.sections and START == LEARN.start
True
"""

from __future__ import annotations

from .cli import main
from .markdown import render_markdown, replace_between_markers
from .parallel import run_parallel
from .report import load_section, machine_info, merge, run_sections
from .suite import LEARN, Suite

__all__ = [
    "END",
    "LEARN",
    "PACKAGE",
    "SECTIONS",
    "START",
    "Suite",
    "load_section",
    "machine_info",
    "main",
    "merge",
    "render_markdown",
    "replace_between_markers",
    "run_parallel",
    "run_sections",
]

SECTIONS = LEARN.sections
PACKAGE = LEARN.package
START = LEARN.start
END = LEARN.end
