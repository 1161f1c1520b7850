"""The operations guide names every metric the daemon exports, and nothing it does not."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from adaptd.daemon.io.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _exported() -> set[str]:
    families = text_string_to_metric_families(Metrics().render().decode())
    names = set()
    for family in families:
        if family.name.endswith("_created"):
            continue  # prometheus_client's creation timestamps, not metrics of ours
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "info":
            names.add(f"{family.name}_info")
        else:
            names.add(family.name)
    return names


def test_operations_guide_lists_exactly_the_exported_metrics() -> None:
    text = (DOCS / "operations.md").read_text()
    table = set(re.findall(r"^\| `(adaptd_[a-z_]+)`", text, flags=re.MULTILINE))
    assert table == _exported()
