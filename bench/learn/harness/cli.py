"""The command line of a suite: run the sections asked for, merge them into the JSON report,
rewrite the suite's docs block (see :mod:`bench.learn.harness`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .markdown import render_markdown, replace_between_markers
from .report import merge, run_sections
from .suite import LEARN, Suite

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, suite: Suite = LEARN) -> int:
    """Command line (see :mod:`bench.learn.harness`)."""
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
