"""A daemon that adapts all the time, and the sampler that watches it: what the ``learner``
and ``soak`` scenarios share.

The default feed (4 streams, a new regime every 300 events of a stream, 400 records/s)
makes about one adaptation a second. The adapting workload has ``churn_streams`` streams
(96) with a new regime every ``churn_regime_len`` events (80) of each, and the daemon's
cool-down after a shift is 30 events instead of 100 (so a shift 80 events after the last is
not absorbed) and its meta-training runs every 0.5 s instead of 2 s. Every adaptation is a
real one: a shift detected by the daemon's detectors, its 20 labelled examples collected
(the default ``adaptation.shots``), the few-shot adaptation on the learner process, the
query gate and, if it passes, a signed publication. At 3000 records/s that is about 22
adaptations a second on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from .feed import Feed, Workload
from .sampler import Sampler
from .services import DaemonChild
from .stage import Stage

__all__ = ["CHURN_SETTINGS", "Pulse", "adaptations_done", "proc_stats", "start_adapting"]

CHURN_SETTINGS = {
    "ADAPTD_DETECTION__COOLDOWN_EVENTS": "30",
    "ADAPTD_ADAPTATION__META_INTERVAL_S": "0.5",
}
"""The daemon settings of the adapting scenarios (``--set`` overrides them)."""


async def start_adapting(stage: Stage, rate: int, what: str) -> tuple[DaemonChild, Feed]:
    """Start the stage's first daemon with :data:`CHURN_SETTINGS` (under the suite's own
    ``--set`` ones) and, once it is ready, the adapting feed at ``rate`` records/s; print
    what runs (``what``: how the scenario watches it)."""
    stage.daemon_settings = CHURN_SETTINGS | stage.daemon_settings
    opts = stage.opts
    workload = Workload(
        streams=opts.churn_streams, regime_len=opts.churn_regime_len, seed=opts.seed
    )
    d = await stage.first_daemon()
    feed = stage.feed(rate, workload)
    feed.start()
    print(
        f"  {rate} records/s in {workload.streams} streams, a new regime every "
        f"{workload.regime_len} events; {what}",
        flush=True,
    )
    stage.result.figures |= {
        "rate": rate,
        "streams": workload.streams,
        "regime_len": workload.regime_len,
    }
    return d, feed


def adaptations_done(metrics: dict[str, float]) -> float:
    """Adaptations the learner finished: published, rejected by the query gate or failed
    (a rebased one is made again and counted by its second outcome)."""
    return sum(
        metrics.get(f"adaptd_adaptations_total{{outcome={o}}}", 0.0)
        for o in ("published", "rejected", "failed")
    )


def proc_stats(pid: int) -> dict[str, int | None]:
    """A process's resident memory (kB), open descriptors and threads, from /proc (None
    each when it has exited)."""
    out: dict[str, int | None] = {"rss_kb": None, "fds": None, "threads": None}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def sockets_to(pid: int, port: int) -> int | None:
    """How many of a process's descriptors are TCP connections to ``port`` on loopback
    (/proc/net/tcp and tcp6 by socket inode); None when it has exited."""
    remote: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                remote[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = []
    for fd in fds:
        with contextlib.suppress(OSError):  # closed since the listing
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.append(link[8:-1])
    return sum(1 for inode in inodes if remote.get(inode) == port)


class Pulse(Sampler):
    """Samples the stage's current daemon every ``every_s``: its /metrics (event-loop lag,
    adaptations, tasks, events) and how long /metrics took to answer (the HTTP server runs
    on the event loop, so a blocked loop answers late); with ``proc``, also the daemon's
    and its learner's /proc figures, and how many of its descriptors are connections to the
    stage's Redis (a pool that fills is not a leak)."""

    def __init__(self, stage: Stage, every_s: float, proc: bool = False) -> None:
        super().__init__()
        self.every_s = every_s
        self.stage = stage
        self.proc = proc
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.monotonic()

    async def sample(self) -> None:
        d = self.stage.current
        t = time.monotonic()
        m = await d.metrics()
        answered = time.monotonic() - t
        s: dict[str, Any] = {"t": round(t - self.t0, 2), "pid": d.pid}
        if m is not None:
            s |= {
                "scrape_s": answered,
                "lag_s": m.get("adaptd_event_loop_lag_seconds"),
                "adaptations": adaptations_done(m),
                "tasks": m.get("adaptd_event_loop_tasks"),
                # What the task count moves with: adaptations being worked on, and records
                # waiting (a daemon falling behind has more of both).
                "in_flight": m.get("adaptd_adaptations_in_flight"),
                "consumer_lag": m.get("adaptd_consumer_lag"),
                "events": m.get("adaptd_events_total", 0.0),
            }
        if self.proc:
            s |= proc_stats(d.pid)
            url = self.stage.daemon_redis_url or self.stage.redis.url
            redis = sockets_to(d.pid, int(url.rsplit(":", 1)[1].split("/")[0]))
            s["redis_connections"] = redis
            if redis is not None and s.get("fds") is not None:
                s["fds_other"] = s["fds"] - redis
            learners = [proc_stats(pid)["rss_kb"] for pid in d.children]
            s["learner_rss_kb"] = sum(x for x in learners if x is not None) or None
        self.samples.append(s)

    def of(self, pid: int) -> list[dict[str, Any]]:
        """The samples of one daemon process that /metrics answered."""
        return [s for s in self.samples if s["pid"] == pid and "adaptations" in s]
