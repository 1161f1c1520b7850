"""The JSON report: run the sections in order and keep what each returned, with the machine.

A section is a module ``<package>.<name>`` with ``run(*, quick: bool, seed: int) -> dict``
(JSON-able) and ``summary(result: dict) -> str`` (markdown); one whose module does not exist
yet is skipped and reported as such. The report::

    {"machine": {...}, "date": "...", "seed": 0,
     "sections": {"speed": {"result": {...}, "seconds": 12.3, "date": "...", "quick": false}}}

Examples
--------
>>> old = {"date": "d1", "sections": {"speed": {"result": {"a": 1}}}}
>>> new = {"date": "d2", "sections": {"digits": {"result": {"b": 2}}}}
>>> merged = merge(old, new)
>>> merged["date"], sorted(merged["sections"])
('d2', ['digits', 'speed'])
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .suite import LEARN

__all__ = ["load_section", "machine_info", "merge", "now", "run_sections"]


def load_section(name: str, package: str = LEARN.package) -> ModuleType | None:
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
    package: str = LEARN.package,
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
        sections[name] = {"result": result, "seconds": seconds, "date": now(), "quick": quick}
        log(f"{name}: done in {seconds:.1f} s")
    return {"machine": machine_info(), "date": now(), "seed": seed, "sections": sections}


def merge(existing: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the sections of ``existing`` that ``new`` did not run."""
    if not existing:
        return new
    sections = {**existing.get("sections", {}), **new.get("sections", {})}
    return {**existing, **new, "sections": sections}


def now() -> str:
    """The time of a run as the report and the docs show it (UTC, to the minute)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
