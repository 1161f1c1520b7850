"""One daemon under a steady feed through a series of faults: the shape every scenario but
``sigkill`` shares. Start the daemon, feed, and for each fault run ``steady_s`` then inject
it and measure the recovery; run ``steady_s`` more, drain, stop the daemon with SIGTERM and
check the invariants (the daemon kept running, processing resumed after each fault, every
offset committed, the output topics' checks)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .feed import Feed
from .invariants import Check
from .outputs import check_outputs
from .recovery import Watch, kept_running, recovery_line, resumed_check
from .services import DaemonChild
from .stage import Stage

__all__ = ["Injection", "Run", "kafka_errors", "settle", "through_faults", "timed_fault"]

Injection = Callable[[Watch], Awaitable[dict[str, Any]]]
"""Injects one fault, waits for the recovery and returns its figures (``Watch.recovery``'s
and any of its own)."""
Figures = Callable[[Watch, dict[str, float]], dict[str, Any]]
"""A scenario's own figures, from the watch and the last daemon's metrics (read after the
drain, before its SIGTERM)."""


@dataclass
class Run:
    first: DaemonChild
    feed: Feed
    watch: Watch
    faults: list[dict[str, Any]]


async def timed_fault(
    watch: Watch,
    what: str,
    begin: Callable[[], object],
    end: Callable[[], object],
    hold_s: float,
) -> dict[str, Any]:
    """``begin()``, ``hold_s`` seconds, ``end()`` (either may be a coroutine function), then
    the recovery from the end."""
    t0 = time.monotonic()
    await _call(begin)
    await asyncio.sleep(hold_s)
    await _call(end)
    t1 = time.monotonic()
    return await watch.recovery(t0, t1, what)


def kafka_errors(last: dict[str, float]) -> dict[str, Any]:
    """The daemon's counts of failed commits and retried sends and publications."""
    return {
        "commit_failures": last.get("adaptd_commits_total{result=failed}", 0.0),
        "send_errors_total": last.get("adaptd_send_errors_total"),
        "publish_errors_total": last.get("adaptd_publish_errors_total"),
    }


async def _call(f: Callable[[], object]) -> None:
    out = f()
    if inspect.isawaitable(out):
        await out


async def settle(
    stage: Stage,
    first: DaemonChild,
    feed: Feed,
    before_stop: Callable[[dict[str, float]], list[Check]] | None = None,
) -> dict[str, float]:
    """The end of a run: stop the feed, drain, read the last daemon's metrics, check it
    kept running (and ``before_stop``'s checks, given those metrics, while it still runs),
    stop it with SIGTERM and check the outputs. Returns the metrics."""
    r = stage.result
    await feed.stop()
    r.checks.append(await stage.drain(feed))
    last = await stage.current.metrics() or {}
    r.checks.append(kept_running(stage, first))
    if before_stop is not None:
        r.checks += before_stop(last)
    r.checks.append(await stage.stop_daemon())
    r.checks += await check_outputs(stage, feed)
    return last


async def through_faults(
    stage: Stage, injections: Sequence[Injection], figures: Figures | None = None
) -> Run:
    r = stage.result
    d = await stage.first_daemon()
    feed = stage.feed()
    feed.start()
    faults: list[dict[str, Any]] = []
    async with Watch(stage, feed) as watch:
        for inject in injections:
            await asyncio.sleep(stage.opts.steady_s)
            faults.append(await inject(watch))
            print(f"  {recovery_line(faults[-1])}", flush=True)
        await asyncio.sleep(stage.opts.steady_s)
    own: dict[str, Any] = {}

    def before_stop(last: dict[str, float]) -> list[Check]:
        own.update(figures(watch, last) if figures is not None else {})
        return [resumed_check(faults)]

    await settle(stage, d, feed, before_stop)
    r.figures.update(own)
    r.figures["retry_log_lines"] = sum(x.log_count('"retrying"') for x in stage.daemons)
    r.figures["faults"] = faults
    return Run(d, feed, watch, faults)
