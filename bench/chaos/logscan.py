"""What the daemons' JSON logs say, as evidence in the report: the retries by what was
retried (how many, the first error and the first and last time), and how often chosen
events were logged. Pure functions of the lines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["count_events", "records", "retries_by_what"]


def records(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """The lines that are JSON objects, parsed (others skipped: tracebacks, stray output)."""
    for line in lines:
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


def retries_by_what(lines: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per ``what`` of the daemon's "retrying" warnings: count, highest attempt, the first
    error (cut to 300 characters) and the first and last timestamps."""
    out: dict[str, dict[str, Any]] = {}
    for r in records(lines):
        if r.get("event") != "retrying":
            continue
        what = str(r.get("what", "?"))
        seen = out.get(what)
        if seen is None:
            out[what] = seen = {
                "count": 0,
                "max_attempt": 0,
                "first_error": str(r.get("error", ""))[:300],
                "first": r.get("timestamp"),
            }
        seen["count"] += 1
        seen["max_attempt"] = max(seen["max_attempt"], int(r.get("attempt", 0) or 0))
        seen["last"] = r.get("timestamp")
    return out


def count_events(lines: Iterable[str], events: Iterable[str]) -> dict[str, int]:
    """How many lines have each of ``events`` as their event."""
    wanted = {e: 0 for e in events}
    for r in records(lines):
        event = r.get("event")
        if event in wanted:
            wanted[event] += 1
    return wanted
