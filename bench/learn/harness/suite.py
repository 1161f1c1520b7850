"""What tells one suite of benchmarks from another: the harness is the same for all.

Examples
--------
>>> LEARN.start, LEARN.sections[0]
('<!-- bench-learn:start -->', 'sinusoid')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["LEARN", "Suite"]


@dataclass(frozen=True)
class Suite:
    """A suite's sections, docs block and default paths.

    Parameters
    ----------
    title
        Heading of the docs section (``## {title}``).
    command
        The make target that runs the suite, named in the docs section.
    sections
        Section names in run and render order.
    package
        The package holding one module per section.
    start, end
        The markers around the suite's block in the docs file.
    default_out, default_docs
        The JSON report and the docs file of a run without ``--quick``.
    prog
        The command line's program name (``python -m ...``).
    """

    title: str
    command: str
    sections: tuple[str, ...]
    package: str
    start: str
    end: str
    default_out: Path
    default_docs: Path
    prog: str


LEARN = Suite(
    title="Learning benchmarks",
    command="make bench-learn",
    sections=("sinusoid", "digits", "regimes", "convergence", "efficiency", "policy", "speed"),
    package="bench.learn",
    start="<!-- bench-learn:start -->",
    end="<!-- bench-learn:end -->",
    default_out=Path("docs/bench/learn.json"),
    default_docs=Path("docs/benchmarks.md"),
    prog="python -m bench.learn",
)
"""The learning benchmarks' suite, the default of every harness function."""
