"""The learning-benchmark harness: runs sections, keeps their results as JSON, writes the docs.

A section is a module ``bench.learn.<name>`` with ``run(*, quick: bool, seed: int)
-> dict`` (JSON-able) and ``summary(result: dict) -> str`` (markdown). They run in the order of
:data:`SECTIONS`; a section whose module does not exist yet is skipped and reported as such.

The JSON report::

    {"machine": {...}, "date": "...", "seed": 0,
     "sections": {"speed": {"result": {...}, "seconds": 12.3, "date": "...", "quick": false}}}

With ``--only``, the sections run are merged into the existing file and the others are kept.
The docs section between :data:`START` and :data:`END` in ``docs/benchmarks.md`` is regenerated
from the JSON (appended at the end when the markers are missing).

Another suite of benchmarks (``bench.learn.continual``) reuses this harness with its
own :class:`Suite`: sections, package, docs markers, title, default paths and program name;
:data:`LEARN` is the learning benchmarks' suite and the default everywhere.

Run it with ``python -m bench.learn [--quick] [--only a,b] [--out FILE.json]
[--docs FILE.md] [--seed N] [--threads N] [--render]``; ``--render`` only regenerates the
docs from the JSON. Without ``--quick``, ``--out`` and ``--docs`` default to
``docs/bench/learn.json`` and ``docs/benchmarks.md``; a ``--quick`` run writes only what it is
told to.

Examples
--------
>>> old = {"date": "d1", "sections": {"speed": {"result": {"a": 1}}}}
>>> new = {"date": "d2", "sections": {"digits": {"result": {"b": 2}}}}
>>> merged = merge(old, new)
>>> merged["date"], sorted(merged["sections"])
('d2', ['digits', 'speed'])
>>> print(replace_between_markers("intro\\n", "body"), end="")
intro
<BLANKLINE>
<!-- bench-learn:start -->
body
<!-- bench-learn:end -->
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from adaptd.adapters.checks import positive_int

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


@dataclass(frozen=True)
class Suite:
    """What tells one suite of benchmarks from another; the harness is the same for all.

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

    Examples
    --------
    >>> LEARN.start, LEARN.sections[0]
    ('<!-- bench-learn:start -->', 'sinusoid')
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
SECTIONS = LEARN.sections
PACKAGE = LEARN.package
START = LEARN.start
END = LEARN.end


def load_section(name: str, package: str = PACKAGE) -> ModuleType | None:
    """The section's module, or None when it does not exist (errors inside it propagate)."""
    if importlib.util.find_spec(f"{package}.{name}") is None:
        return None
    module = importlib.import_module(f"{package}.{name}")
    for attribute in ("run", "summary"):
        if not callable(getattr(module, attribute, None)):
            raise ValueError(f"section {name!r} ({module.__name__}) has no {attribute}()")
    return module


def machine_info() -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo), cores, Python, torch version and torch threads."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
    }


def run_sections(
    names: Sequence[str],
    *,
    quick: bool,
    seed: int,
    package: str = PACKAGE,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Run the named sections in order; a report ``{"machine", "date", "seed", "sections"}``."""
    sections: dict[str, Any] = {}
    for name in names:
        module = load_section(name, package)
        if module is None:
            log(f"{name}: skipped, no module {package}.{name} yet")
            continue
        log(f"{name}: running{' (quick)' if quick else ''}")
        start = time.perf_counter()
        result = module.run(quick=quick, seed=seed)
        seconds = time.perf_counter() - start
        json.dumps(result)  # fail here, not when writing, if a section returns non-JSON data
        sections[name] = {"result": result, "seconds": seconds, "date": _now(), "quick": quick}
        log(f"{name}: done in {seconds:.1f} s")
    return {"machine": machine_info(), "date": _now(), "seed": seed, "sections": sections}


def run_parallel(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list[Any]:
    """``[function(job) for job in jobs]``, in ``workers`` spawned processes of one torch thread
    each when ``workers > 1`` (in this process otherwise). Jobs are handed out one at a time in
    the given order (put the longest first); ``function`` must be importable at module level."""
    positive_int("workers", workers)
    if workers == 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork after torch start-up is unsafe
    with context.Pool(min(workers, len(jobs)), initializer=_one_torch_thread) as pool:
        return pool.map(function, jobs, chunksize=1)


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def merge(existing: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the sections of ``existing`` that ``new`` did not run."""
    if not existing:
        return new
    sections = {**existing.get("sections", {}), **new.get("sections", {})}
    return {**existing, **new, "sections": sections}


def render_markdown(
    report: dict[str, Any], package: str | None = None, *, suite: Suite = LEARN
) -> str:
    """The docs section for a report: machine, then each section's ``summary``, in order
    (sections are looked up in ``package``, by default ``suite.package``)."""
    package = suite.package if package is None else package
    machine = report.get("machine", {})
    lines = [
        f"## {suite.title}",
        "",
        f"Generated by `{suite.command}` (`{suite.prog}`) from "
        f"`{suite.default_out}`; do not edit by hand.",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores (shared), "
        f"CPU only, Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}, "
        f"{machine.get('threads', '?')} torch thread(s). Last run {report.get('date', '?')}, "
        f"seed {report.get('seed', '?')}.",
    ]
    sections = report.get("sections", {})
    known = suite.sections
    missing = [name for name in known if name not in sections]
    for name in [*known, *sorted(set(sections) - set(known))]:
        if name not in sections:
            continue
        entry = sections[name]
        module = load_section(name, package)
        body = (
            module.summary(entry["result"])
            if module is not None
            else f"(no module {package}.{name} to summarise this result)"
        )
        quick = ", quick mode: not representative" if entry.get("quick") else ""
        lines += [
            "",
            f"### {name}",
            "",
            body,
            "",
            f"*{entry['seconds']:.1f} s, run {entry['date']}{quick}.*",
        ]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, body: str, *, suite: Suite = LEARN) -> str:
    """``text`` with everything between the suite's start and end markers replaced by ``body``
    (the block appended at the end when the markers are missing)."""
    block = f"{suite.start}\n{body.rstrip()}\n{suite.end}"
    start, end = text.find(suite.start), text.find(suite.end)
    if start == -1 or end == -1 or end < start:
        return f"{text.rstrip()}\n\n{block}\n"
    return text[:start] + block + text[end + len(suite.end) :]


def main(argv: Sequence[str] | None = None, *, suite: Suite = LEARN) -> int:
    """Command line (see the module docstring)."""
    known = suite.sections
    parser = argparse.ArgumentParser(prog=suite.prog)
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes, seconds not min")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {known}")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (merged into)")
    parser.add_argument("--docs", type=Path, default=None, help="markdown file to update")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--render", action="store_true", help="only regenerate --docs from the --out JSON"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"--only: unknown sections {unknown}; known: {', '.join(known)}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    out = args.out if args.out is not None or args.quick else suite.default_out
    docs = args.docs if args.docs is not None or args.quick else suite.default_docs

    if args.render:
        if out is None or docs is None or not out.exists():
            parser.error("--render needs an existing --out JSON and a --docs file")
        report = json.loads(out.read_text())
    else:
        import torch

        torch.set_num_threads(args.threads)
        report = run_sections(
            [n for n in known if n in names],
            quick=args.quick,
            seed=args.seed,
            package=suite.package,
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
        if out is not None:
            existing = json.loads(out.read_text()) if out.exists() and args.only else None
            report = merge(existing, report)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report, suite=suite)
    if docs is not None:
        text = docs.read_text() if docs.exists() else ""
        docs.write_text(replace_between_markers(text, markdown, suite=suite))
    print(markdown)
    return 0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
