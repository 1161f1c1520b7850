"""Watching a live daemon around a fault: its /readyz and /metrics sampled every
``SAMPLE_EVERY_S``, and after the fault the seconds until processing resumes, /readyz is 200
again and the group has caught up; plus the checks and lines that report them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .feed import Feed, committed
from .invariants import Check
from .sampler import Sampler
from .services import DaemonChild
from .stage import GROUP, PARTITIONS, STUCK_AFTER_S, TOPICS, Stage, round2

__all__ = ["SAMPLE_EVERY_S", "Watch", "kept_running", "recovery_line", "resumed_check"]

SAMPLE_EVERY_S = 0.1
"""How often a daemon's /readyz and /metrics are read around a fault (recovery times are
this precise)."""
RECOVERY_WAIT_S = 60.0


class Watch(Sampler):
    """Samples the stage's current daemon while entered (``async with``)."""

    every_s = SAMPLE_EVERY_S

    def __init__(self, stage: Stage, feed: Feed) -> None:
        super().__init__()
        self.stage = stage
        self.feed = feed
        self.samples: list[dict[str, Any]] = []

    async def sample(self) -> None:
        t = time.monotonic()
        d = self.stage.current
        status, checks = await d.readyz()
        m = await d.metrics()
        self.samples.append(
            {
                "t": t,
                "pid": d.pid,
                "ready": status,
                "not_ready": [k for k, v in checks.items() if v is False],
                "processed": None if m is None else m.get("adaptd_events_total", 0.0),
                "redis_errors": None if m is None else m.get("adaptd_redis_errors_total"),
                "sent": self.feed.sent,
            }
        )

    def last_sampled(self, key: str) -> dict[int, float]:
        """The last sampled value of ``key`` per daemon process."""
        out: dict[int, float] = {}
        for sample in self.samples:
            if sample[key] is not None:
                out[sample["pid"]] = sample[key]
        return out

    def during(self, start: float, end: float) -> list[dict[str, Any]]:
        return [s for s in self.samples if start <= s["t"] <= end]

    async def recovery(
        self, fault_start: float, fault_end: float, what: str, wait_s: float = RECOVERY_WAIT_S
    ) -> dict[str, Any]:
        """After a fault: seconds from its end until processing resumes, /readyz is 200
        again, and every record sent before its end is committed (caught up; commits run
        every second; each waited for ``wait_s`` at most); what readiness and processing did
        during it. A daemon that exits is replaced (:meth:`Stage.replace_if_dead`) and
        counted."""
        stage, feed = self.stage, self.feed
        sent_then = feed.sent
        pid = stage.current.pid
        before = [
            s
            for s in self.samples
            if s["t"] <= fault_end and s["pid"] == pid and s["processed"] is not None
        ]
        base = before[-1]["processed"] if before else 0.0
        deadline = fault_end + wait_s
        captured = exited = False
        resume = ready = caught = None
        while time.monotonic() < deadline and (resume is None or ready is None or caught is None):
            await asyncio.sleep(0.25)
            if await stage.replace_if_dead(what):
                exited = True
            for s in self.samples:
                if s["t"] < fault_end:
                    continue
                floor = base if s["pid"] == pid else 0.0
                if resume is None and s["processed"] is not None and s["processed"] > floor:
                    resume = s["t"] - fault_end
                if ready is None and s["ready"] == 200 and not (exited and s["pid"] == pid):
                    ready = s["t"] - fault_end
            if caught is None and feed.settled(sent_then):
                got = await committed(stage.broker.bootstrap, GROUP, TOPICS["input"], PARTITIONS)
                if all(got.get(p, -1) >= e for p, e in feed.ends(sent_then).items()):
                    caught = time.monotonic() - fault_end
            if resume is None and not captured and time.monotonic() - fault_end > STUCK_AFTER_S:
                captured = True
                await stage.capture(
                    stage.current,
                    f"{what}: nothing processed {STUCK_AFTER_S:.0f} s after the fault ended",
                )
        during = self.during(fault_start, fault_end)
        counts = [s["processed"] for s in during if s["processed"] is not None]
        out: dict[str, Any] = {
            "fault": what,
            "fault_s": round(fault_end - fault_start, 1),
            "daemon_exited": exited,
            "readyz_failed_during_fault": any(s["ready"] != 200 for s in during),
            "metrics_unanswered_during_fault": sum(s["processed"] is None for s in during),
            "processed_during_fault": (counts[-1] - counts[0]) if len(counts) > 1 else 0,
            "resume_s": round2(resume),
            "ready_back_s": round2(ready),
            "caught_up_s": round2(caught),
            "backlog_at_fault_end": max(0, int(sent_then - base)) if not exited else None,
        }
        if wait_s != RECOVERY_WAIT_S:
            out["recovery_wait_s"] = wait_s
        return out


def kept_running(stage: Stage, first: DaemonChild) -> Check:
    exits = stage.result.figures.get("supervisor_restarts", [])
    return Check(
        "the daemon kept running through the faults",
        not exits and stage.current is first,
        f"daemon {first.pid}: "
        + (
            "; ".join(f"exited with {e['exit_status']} ({e['when']}): {e['error']}" for e in exits)
            if exits
            else "alive throughout"
        ),
    )


def resumed_check(faults: list[dict[str, Any]]) -> Check:
    bad = [f["fault"] for f in faults if f["resume_s"] is None or f["ready_back_s"] is None]
    return Check(
        "processing resumed and /readyz back to 200 after each fault",
        not bad,
        "; ".join(recovery_line(f) for f in faults),
    )


def recovery_line(f: dict[str, Any]) -> str:
    def s(x: float | None) -> str:
        waited = f.get("recovery_wait_s", RECOVERY_WAIT_S)
        return f"never ({waited:.0f} s)" if x is None else f"{x:.1f} s"

    if f.get("daemon_exited"):
        return (
            f"{f['fault']}: the daemon EXITED; its replacement resumed {s(f['resume_s'])}, "
            f"ready {s(f['ready_back_s'])}, caught up {s(f['caught_up_s'])} after it ended"
        )

    return (
        f"{f['fault']}: resumed {s(f['resume_s'])}, ready {s(f['ready_back_s'])}, "
        f"caught up {s(f['caught_up_s'])} after it ended"
        f" (readyz failed during it: {'yes' if f['readyz_failed_during_fault'] else 'no'})"
    )
