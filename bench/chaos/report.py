"""A scenario's figures as a small two-column table (lists of details stay in the JSON)."""

from __future__ import annotations

from typing import Any

__all__ = ["table"]

_SKIP = {"lives", "daemon_logs", "shifts_published_more_than_once_list", "retries", "series"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def table(name: str, figures: dict[str, Any], seconds: float) -> str:
    rows: list[tuple[str, str]] = [("scenario", f"{name} ({seconds:.0f} s)")]
    for key, value in figures.items():
        if key in _SKIP:
            continue
        if key == "supervisor_restarts":
            rows.append(("daemons exited unasked (replaced)", str(len(value))))
            continue
        if key == "faults":
            for fault in value:
                label = fault["fault"]
                rows += [(f"{label}: {k}", _fmt(v)) for k, v in fault.items() if k != "fault"]
            continue
        rows.append((key.replace("_", " "), _fmt(value)))
    rows.append(("logs", str(figures.get("daemon_logs", "-"))))
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    return "\n".join([line, *(f"{k:<{width}}  {v}" for k, v in rows), line])
