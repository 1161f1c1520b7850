"""One scenario's world: its broker, its Redis (AOF), the topics, a signing key and the
daemons it started; the time box a scenario runs in; evidence of a daemon that misbehaves
(the time, its log file and tail, its metrics and ``py-spy dump`` of the process), captured
as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptd.daemon.core.signing import Keyring, generate_key_pair
from adaptd.tools.embedded import create_topics

from .feed import Feed, Workload, committed
from .invariants import Check, check_offsets
from .services import AofRedis, Broker, DaemonChild, daemon_env, py_spy_dump

__all__ = [
    "GROUP",
    "PARTITIONS",
    "PREFIX",
    "READY_TIMEOUT_S",
    "STUCK_AFTER_S",
    "TOPICS",
    "Options",
    "Result",
    "Stage",
    "now",
    "round2",
    "run_stage",
]

PARTITIONS = 2
GROUP = "chaos"
PREFIX = "chaos"
TOPICS = {
    "input": "chaos.market",
    "policies": "chaos.policies",
    "shifts": "chaos.shifts",
    "deadletter": "chaos.deadletter",
}
READY_TIMEOUT_S = 60.0
STUCK_AFTER_S = 20.0
"""No processed record for this long while records wait: capture evidence."""


@dataclass
class Options:
    rate: int = 400
    kills: int = 20
    pause_s: float = 10.0
    """How long each timed fault lasts: a SIGSTOP, Redis full, a network cut."""
    steady_s: float = 8.0
    redis_down_s: float = 3.0
    """Seconds between Redis's SIGKILL and its restart (a supervisor's restart delay)."""
    redis_maxmemory: str = "1800kb"
    """The ``redis_full`` scenario's starting ``maxmemory``: above what the daemon writes
    while it starts (about 1.2 MB used at its first /readyz 200), reached after some seconds
    of the feed (it then grows by about 30 KB/s)."""
    full_s: float = 70.0
    """How long Redis stays full: past the daemon's stall watch (``kafka.stall_timeout_s``,
    60 s), to see whether /readyz ever says so."""
    churn_streams: int = 96
    """``learner`` and ``soak``: streams of the adapting workload (:mod:`.churn`)."""
    churn_regime_len: int = 80
    """``learner`` and ``soak``: events of a stream between its regime changes."""
    learner_s: float = 120.0
    """``learner``: seconds of continuous adaptation under a sampled event loop."""
    learner_rate: int = 1000
    """``learner``: records per second fed (of the adapting workload, :mod:`.churn`)."""
    lag_sample_s: float = 0.1
    """``learner``: how often /metrics (the event-loop lag gauge) is read."""
    soak_adaptations: int = 10_000
    """``soak``: adaptations (published, rejected or failed) to run the daemon through."""
    soak_rate: int = 3000
    """``soak``: records per second fed (about 22 adaptations a second on 2 cores)."""
    soak_timeout_s: float = 1200.0
    """``soak``: the most it may take to reach ``soak_adaptations``."""
    soak_sample_s: float = 2.0
    """``soak``: how often the daemon's RSS, descriptors, threads and tasks are read."""
    seed: int = 12
    work: Path = Path("/tmp/adaptd-chaos")
    daemon_settings: tuple[tuple[str, str], ...] = ()
    """More ADAPTD_* variables for every daemon of every scenario (``--set``)."""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def round2(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@dataclass
class Result:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "figures": self.figures,
            "checks": [c.as_dict() for c in self.checks],
            "incidents": self.incidents,
            "notes": self.notes,
        }


class Stage:
    """One scenario's services: a broker, a Redis with AOF, the topics, a signing key, the
    daemons it started (every one killed at the end, its learner too).

    ``daemon_bootstrap`` and ``daemon_redis_url`` are what the daemons are given; they are
    the services' own addresses unless a scenario puts a proxy in between (a subclass
    that opens and closes it with the stage)."""

    def __init__(
        self,
        name: str,
        opts: Options,
        result: Result,
        *,
        broker: Broker | None = None,
        redis: AofRedis | None = None,
    ) -> None:
        self.name = name
        self.opts = opts
        self.result = result
        self.folder = opts.work / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.broker = broker or Broker()
        self.redis = redis or AofRedis(self.folder / "redis")
        self.key, public = generate_key_pair()
        self.keyring = Keyring.from_pem([public])
        self.daemons: list[DaemonChild] = []
        self.feeds: list[Feed] = []
        self.daemon_bootstrap: str | None = None
        self.daemon_redis_url: str | None = None
        self.daemon_settings: dict[str, str] = dict(opts.daemon_settings)
        """More ADAPTD_* variables for the daemons."""

    async def open(self) -> None:
        self.broker.start()
        self.redis.start()
        await create_topics(self.broker.bootstrap, [TOPICS["input"]], partitions=PARTITIONS)
        await create_topics(
            self.broker.bootstrap, [TOPICS["policies"], TOPICS["shifts"], TOPICS["deadletter"]]
        )

    async def close(self) -> None:
        for d in self.daemons:
            d.cleanup()
        self.redis.stop()
        self.broker.stop()

    def feed(self, rate: int | None = None, workload: Workload | None = None) -> Feed:
        """A feed of the input topic (the options' rate and the default workload unless
        given), cancelled with the stage."""
        feed = Feed(
            self.broker.bootstrap,
            TOPICS["input"],
            rate=rate or self.opts.rate,
            workload=workload or Workload(seed=self.opts.seed),
        )
        self.feeds.append(feed)
        return feed

    def start_daemon(self) -> DaemonChild:
        def env_of(port: int) -> dict[str, str]:
            return daemon_env(
                bootstrap=self.daemon_bootstrap or self.broker.bootstrap,
                redis_url=self.daemon_redis_url or self.redis.url,
                topics=TOPICS,
                group=GROUP,
                prefix=PREFIX,
                signing_key=self.key,
                port=port,
                extra=self.daemon_settings,
            )

        d = DaemonChild.start(env_of, self.folder / f"daemon-{len(self.daemons):02d}.log")
        self.daemons.append(d)
        return d

    @property
    def current(self) -> DaemonChild:
        return self.daemons[-1]

    async def first_daemon(self) -> DaemonChild:
        """Start the scenario's first daemon and wait for its /readyz 200 (one that is not
        ready aborts the scenario, and :func:`run_stage` captures its evidence)."""
        d = self.start_daemon()
        if await d.wait_ready(READY_TIMEOUT_S) is None:
            raise RuntimeError("the daemon was not ready")
        return d

    async def replace_if_dead(self, when: str) -> bool:
        """If the current daemon has exited without being stopped: capture its evidence, then start
        another and wait for it to be ready, as a supervisor would (so what it left behind
        is still checked). True when it had to."""
        d = self.current
        if d.alive():
            return False
        status = d.proc.returncode
        await self.capture(d, f"{when}: the daemon exited (status {status}) without being stopped")
        t0 = time.monotonic()
        fresh = self.start_daemon()
        ready = await fresh.wait_ready(READY_TIMEOUT_S)
        self.result.figures.setdefault("supervisor_restarts", []).append(
            {
                "when": when,
                "exited_pid": d.pid,
                "exit_status": d.proc.returncode,
                "error": failure_of(d),
                "ready_s": round2(ready),
                "at": now(),
            }
        )
        print(
            f"  ! daemon {d.pid} exited (status {d.proc.returncode}): {failure_of(d)}; "
            f"restarted as a supervisor would, ready in "
            f"{'never' if ready is None else f'{ready:.1f} s'} ({time.monotonic() - t0:.1f} s)",
            flush=True,
        )
        if ready is None:
            raise RuntimeError("the replacement daemon was not ready")
        return True

    async def capture(self, d: DaemonChild, why: str) -> dict[str, Any]:
        """Evidence of a misbehaving daemon, also written next to its log."""
        status, checks = await d.readyz()
        metrics = await d.metrics() or {}
        # Off the event loop: a scenario's proxy runs on it, and py-spy can take seconds.
        dump = "the process has exited"
        if d.alive():
            dump = await asyncio.to_thread(py_spy_dump, d.pid)
        incident = {
            "why": why,
            "time": now(),
            "pid": d.pid,
            "alive": d.alive(),
            "exit_status": d.proc.returncode,
            "seconds_since_start": round(time.monotonic() - d.started_at, 1),
            "log": str(d.log_path),
            "readyz": {"status": status, "checks": checks},
            "metrics": {
                k: v
                for k, v in metrics.items()
                if k.startswith(("adaptd_events_total", "adaptd_consumer_lag", "adaptd_commits"))
                or k in ("adaptd_redis_errors_total", "adaptd_assigned_partitions")
            },
            "log_tail": d.log_tail(30),
            "py_spy_dump": dump,
        }
        stem = d.log_path.with_suffix("")
        (stem.parent / f"{stem.name}-incident-{len(self.result.incidents)}.txt").write_text(
            json.dumps({k: v for k, v in incident.items() if k != "py_spy_dump"}, indent=2)
            + "\n\n"
            + dump
            + "\n"
        )
        self.result.incidents.append(incident)
        print(f"  ! {why} (pid {d.pid}, log {d.log_path}); evidence captured", flush=True)
        return incident

    async def processed(self, d: DaemonChild) -> float | None:
        m = await d.metrics()
        return None if m is None else m.get("adaptd_events_total", 0.0)

    async def drain(self, feed: Feed, timeout_s: float = 120.0) -> Check:
        """Wait until the group's commits reach the end of what the feed wrote; capture
        evidence once if the daemon processes nothing for STUCK_AFTER_S meanwhile (and
        replace it if it exits)."""
        ends = feed.ends()
        t0 = time.monotonic()
        d = self.current
        last_count, last_move = await self.processed(d), time.monotonic()
        captured = False
        got: dict[int, int] = {}
        while time.monotonic() - t0 < timeout_s:
            got = await committed(self.broker.bootstrap, GROUP, TOPICS["input"], PARTITIONS)
            if all(got.get(p, -1) >= end for p, end in ends.items()):
                break
            if await self.replace_if_dead("drain"):
                d, captured = self.current, False
                last_count, last_move = None, time.monotonic()
            count = await self.processed(d)
            if count != last_count:
                last_count, last_move = count, time.monotonic()
            elif not captured and time.monotonic() - last_move > STUCK_AFTER_S:
                captured = True
                await self.capture(
                    d,
                    f"drain: nothing processed for {STUCK_AFTER_S:.0f} s while commits "
                    f"{got} are short of the feed's ends {ends}",
                )
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - t0
        self.result.figures["drain_s"] = round(drain_s, 1)
        return check_offsets(ends, got)

    async def stop_daemon(self) -> Check:
        status, seconds = await self.current.terminate(30.0)
        self.result.figures["sigterm_exit_status"] = status
        self.result.figures["sigterm_exit_s"] = round(seconds, 1)
        return Check(
            "last daemon stops cleanly on SIGTERM",
            status == 0,
            f"exit status {status} after {seconds:.1f} s"
            + ("" if status is not None else " (killed after 30 s)"),
        )


def failure_of(d: DaemonChild) -> str:
    """The error an exited daemon logged ("adaptd failed"), the signal that killed it, or
    its last log line."""
    if d.proc.returncode is not None and d.proc.returncode < 0:
        return f"killed by signal {-d.proc.returncode} (nothing logged)"
    for line in reversed(d.log_tail(200)):
        if '"adaptd failed"' in line:
            with contextlib.suppress(ValueError, KeyError):
                return str(json.loads(line)["error"])
    tail = d.log_tail(1)
    return tail[0][:300] if tail else "no log"


async def run_stage(
    stage: Stage, body: Callable[[Stage], Awaitable[None]], budget_s: float
) -> Result:
    """Run ``body`` on a fresh stage within its time box (a hang is a failure with the
    current daemon's evidence, not a stuck suite)."""
    result = stage.result
    t0 = time.monotonic()
    try:
        await stage.open()
        await asyncio.wait_for(body(stage), budget_s)
    except Exception as exc:
        what = f"over its time box of {budget_s:.0f} s" if isinstance(exc, TimeoutError) else ""
        result.checks.append(Check("scenario ran to its end", False, what or repr(exc)))
        for d in stage.daemons[-1:]:
            if d.alive():
                await stage.capture(d, f"scenario aborted: {what or repr(exc)}")
    finally:
        for feed in stage.feeds:
            await feed.cancel()
        await stage.close()
        result.seconds = time.monotonic() - t0
    result.figures["daemon_logs"] = str(stage.folder)
    return result
