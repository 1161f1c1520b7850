"""The continual-learning benchmarks' command line: the learning benchmarks' harness
(:mod:`bench.learn.harness`) with this package's :data:`SUITE` of sections, JSON file
and docs markers.

Sections (:data:`SECTIONS`) are modules of this package with ``run(*, quick, seed) -> dict``
and ``summary(result) -> str``, run in order by :func:`bench.learn.harness
.run_sections`; the JSON report has the same layout as ``docs/bench/learn.json``::

    {"machine": {...}, "date": "...", "seed": 0,
     "sections": {"permuted": {"result": {...}, "seconds": 1234.5, "date": "...",
                               "quick": false}, ...}}

``--only`` merges the sections run into the existing JSON; the docs between :data:`START` and
:data:`END` in ``docs/benchmarks.md`` are regenerated from the JSON (``--render`` does only
that). ``make bench-continual`` runs ``python -m bench.learn.continual --out
docs/bench/continual.json --docs docs/benchmarks.md``.

Time plan of a full run on this 2-core machine (2 workers of one torch thread each),
extrapolated from pilots and single runs of every strategy (each section's docstring has its
own): permuted about 25 minutes, split about 3, market about 1, cost about 1; with process
start-up and uneven ends of the worker pools, 30 to 40 minutes. ``--quick`` runs every
section at smoke-test sizes in about 30 seconds.

Examples
--------
>>> START, SECTIONS[0]
('<!-- bench-continual:start -->', 'permuted')
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..harness import cli, markdown
from ..harness.suite import Suite

__all__ = [
    "END",
    "PACKAGE",
    "SECTIONS",
    "START",
    "SUITE",
    "main",
    "render_markdown",
    "replace_between_markers",
]

SUITE = Suite(
    title="Continual-learning benchmarks",
    command="make bench-continual",
    sections=("permuted", "split", "market", "cost"),
    package="bench.learn.continual",
    start="<!-- bench-continual:start -->",
    end="<!-- bench-continual:end -->",
    default_out=Path("docs/bench/continual.json"),
    default_docs=Path("docs/benchmarks.md"),
    prog="python -m bench.learn.continual",
)
SECTIONS = SUITE.sections
PACKAGE = SUITE.package
START = SUITE.start
END = SUITE.end

# The learning benchmarks' harness bound to this suite: the functions are the same for both.
render_markdown = functools.partial(markdown.render_markdown, suite=SUITE)
replace_between_markers = functools.partial(markdown.replace_between_markers, suite=SUITE)
main = functools.partial(cli.main, suite=SUITE)
