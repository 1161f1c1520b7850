"""The three fault scenarios. Each owns its broker, its Redis (AOF) and its daemons, runs a
steady feed, injects its faults, drains, stops the daemon with SIGTERM and checks the
invariants of :mod:`.invariants` on what the topics and the group hold.

Evidence of a daemon that misbehaves (not ready, not consuming) is captured as it happens:
the time, its log file and tail, its metrics and ``py-spy dump`` of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptd.daemon.core.policy import PolicyError, decode_message
from adaptd.daemon.core.signing import Keyring, SignatureError, generate_key_pair
from adaptd.tools.embedded import create_topics

from .feed import Feed, Workload, committed, read_topic
from .invariants import (
    Check,
    PolicyRecord,
    check_dead_letters,
    check_offsets,
    check_policies,
    percentiles,
)
from .services import AofRedis, Broker, DaemonChild, daemon_env, py_spy_dump

__all__ = ["Options", "broker_scenario", "redis_scenario", "sigkill_scenario"]

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
SAMPLE_EVERY_S = 0.1
"""How often a daemon's /readyz and /metrics are read around a fault (recovery times are
this precise)."""
STUCK_AFTER_S = 20.0
"""No processed record for this long while records wait: capture evidence."""


@dataclass
class Options:
    rate: int = 400
    kills: int = 20
    pause_s: float = 10.0
    steady_s: float = 8.0
    redis_down_s: float = 3.0
    """Seconds between Redis's SIGKILL and its restart (a supervisor's restart delay)."""
    seed: int = 12
    work: Path = Path("/tmp/adaptd-chaos")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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
    daemons it started (every one killed at the end, its learner too)."""

    def __init__(self, name: str, opts: Options, result: Result) -> None:
        self.name = name
        self.opts = opts
        self.result = result
        self.folder = opts.work / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.broker = Broker()
        self.redis = AofRedis(self.folder / "redis")
        self.key, public = generate_key_pair()
        self.keyring = Keyring.from_pem([public])
        self.daemons: list[DaemonChild] = []
        self.feeds: list[Feed] = []
        self.samples: list[dict[str, Any]] = []

    async def open(self) -> None:
        self.broker.start()
        self.redis.start()
        await create_topics(self.broker.bootstrap, [TOPICS["input"]], partitions=PARTITIONS)
        await create_topics(
            self.broker.bootstrap, [TOPICS["policies"], TOPICS["shifts"], TOPICS["deadletter"]]
        )

    def close(self) -> None:
        for d in self.daemons:
            d.cleanup()
        self.redis.stop()
        self.broker.stop()

    def feed(self) -> Feed:
        feed = Feed(
            self.broker.bootstrap,
            TOPICS["input"],
            rate=self.opts.rate,
            workload=Workload(seed=self.opts.seed),
        )
        self.feeds.append(feed)
        return feed

    def start_daemon(self) -> DaemonChild:
        def env_of(port: int) -> dict[str, str]:
            return daemon_env(
                bootstrap=self.broker.bootstrap,
                redis_url=self.redis.url,
                topics=TOPICS,
                group=GROUP,
                prefix=PREFIX,
                signing_key=self.key,
                port=port,
            )

        d = DaemonChild.start(env_of, self.folder / f"daemon-{len(self.daemons):02d}.log")
        self.daemons.append(d)
        return d

    @property
    def current(self) -> DaemonChild:
        return self.daemons[-1]

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
                "error": _failure_of(d),
                "ready_s": _round(ready),
                "at": _now(),
            }
        )
        print(
            f"  ! daemon {d.pid} exited (status {d.proc.returncode}): {_failure_of(d)}; "
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
        dump = py_spy_dump(d.pid) if d.alive() else "the process has exited"
        incident = {
            "why": why,
            "time": _now(),
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

    async def outputs(self, feed: Feed) -> list[Check]:
        """The dead-letter and policy invariants, from the topics."""
        dead = await read_topic(self.broker.bootstrap, TOPICS["deadletter"])
        found = []
        for r in dead:
            source = json.loads(r.value)["source"]
            found.append((int(source["partition"]), int(source["offset"])))
        checks = [check_dead_letters(feed.bad, found)]
        raw = await read_topic(self.broker.bootstrap, TOPICS["policies"])
        records, refused, chain = [], 0, []
        for r in raw:
            try:
                self.keyring.verify(r.value, r.headers)
                m = decode_message(r.value)
                m.weight_bytes()  # the checksum
            except (SignatureError, PolicyError, ValueError):
                refused += 1
                continue
            kind = "baseline" if m.validation else "adapted"
            records.append(
                PolicyRecord(m.model_id, m.version, m.parent_version, m.sha256, r.offset, kind)
            )
            chain.append(
                {
                    "partition": r.partition,
                    "offset": r.offset,
                    "model": m.model_id,
                    "version": m.version,
                    "parent_version": m.parent_version,
                    "kind": kind,
                    "shift": m.shift.id if m.shift is not None else None,
                    "created_ms": m.created_ms,
                    "sha256": m.sha256[:16],
                }
            )
        # The policy topic as read, one line per message: the evidence behind the chain check.
        (self.folder / "policies.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chain))
        checks += check_policies(records)
        checks.append(
            Check(
                "every policy signed and intact",
                refused == 0 and bool(raw),
                f"{len(raw)} policies, {refused} refused (signature or checksum)",
            )
        )
        f = self.result.figures
        f["events_fed"] = len(feed.acked)
        f["feed_send_failures"] = feed.failed
        f["dead_letters_expected"] = len(feed.bad)
        f["dead_letters_found"] = len(found)
        f["dead_letter_duplicates"] = checks[0].figures["duplicates"]
        f["policies_published"] = len(raw)
        f["policy_models"] = checks[1].figures["models"]
        f["policy_duplicates"] = checks[1].figures["duplicates"]
        f["policy_conflicts"] = checks[1].figures["conflicts"]
        f["forks"] = checks[2].figures["forks"]
        if checks[2].figures["fork_kinds"]:
            f["forks_by_kind"] = checks[2].figures["fork_kinds"]
        # At-least-once processing after a crash can detect a shift again and adapt for it
        # again (on top of its own earlier policy): counted here, not a failure.
        shifts = Counter((c["model"], c["shift"]) for c in chain if c["shift"] is not None)
        again = {f"{m} {sid}": n for (m, sid), n in shifts.items() if n > 1}
        f["shifts_published_more_than_once"] = len(again)
        if again:
            f["shifts_published_more_than_once_list"] = dict(list(again.items())[:20])
        f["version_gaps"] = checks[2].figures["gaps"]
        return checks

    # -- sampling a live daemon around a fault ----------------------------------------
    async def sample(self, feed: Feed, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.monotonic()
            d = self.current
            status, _ = await d.readyz()
            m = await d.metrics()
            self.samples.append(
                {
                    "t": t,
                    "pid": d.pid,
                    "ready": status,
                    "processed": None if m is None else m.get("adaptd_events_total", 0.0),
                    "redis_errors": None if m is None else m.get("adaptd_redis_errors_total"),
                    "sent": feed.sent,
                }
            )
            await asyncio.sleep(SAMPLE_EVERY_S)

    def last_sampled(self, key: str) -> dict[int, float]:
        """The last sampled value of ``key`` per daemon process."""
        out: dict[int, float] = {}
        for sample in self.samples:
            if sample[key] is not None:
                out[sample["pid"]] = sample[key]
        return out

    async def recovery(
        self, feed: Feed, fault_start: float, fault_end: float, what: str
    ) -> dict[str, Any]:
        """After a fault: seconds from its end until processing resumes, /readyz is 200
        again, and every record sent before its end is committed (caught up; commits run
        every second); what readiness and processing did during it. A daemon that exits
        is replaced (:meth:`replace_if_dead`) and counted."""
        sent_then = feed.sent
        pid = self.current.pid
        before = [
            s
            for s in self.samples
            if s["t"] <= fault_end and s["pid"] == pid and s["processed"] is not None
        ]
        base = before[-1]["processed"] if before else 0.0
        deadline = fault_end + 60.0
        captured = exited = False
        resume = ready = caught = None
        while time.monotonic() < deadline and (resume is None or ready is None or caught is None):
            await asyncio.sleep(0.25)
            if await self.replace_if_dead(what):
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
                got = await committed(self.broker.bootstrap, GROUP, TOPICS["input"], PARTITIONS)
                if all(got.get(p, -1) >= e for p, e in feed.ends(sent_then).items()):
                    caught = time.monotonic() - fault_end
            if resume is None and not captured and time.monotonic() - fault_end > STUCK_AFTER_S:
                captured = True
                await self.capture(
                    self.current,
                    f"{what}: nothing processed {STUCK_AFTER_S:.0f} s after the fault ended",
                )
        during = [s for s in self.samples if fault_start <= s["t"] <= fault_end]
        counts = [s["processed"] for s in during if s["processed"] is not None]
        return {
            "fault": what,
            "fault_s": round(fault_end - fault_start, 1),
            "daemon_exited": exited,
            "readyz_failed_during_fault": any(s["ready"] != 200 for s in during),
            "metrics_unanswered_during_fault": sum(s["processed"] is None for s in during),
            "processed_during_fault": (counts[-1] - counts[0]) if len(counts) > 1 else 0,
            "resume_s": _round(resume),
            "ready_back_s": _round(ready),
            "caught_up_s": _round(caught),
            "backlog_at_fault_end": max(0, int(sent_then - base)) if not exited else None,
        }


def _failure_of(d: DaemonChild) -> str:
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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


async def _run_stage(
    name: str, opts: Options, body: Callable[[Stage], Any], budget_s: float
) -> Result:
    """Run ``body`` on a fresh stage within its time box (a hang is a failure with the
    current daemon's evidence, not a stuck suite)."""
    result = Result(name)
    stage = Stage(name, opts, result)
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
        stage.close()
        result.seconds = time.monotonic() - t0
    result.figures["daemon_logs"] = str(stage.folder)
    return result


# -- 1. SIGKILL ---------------------------------------------------------------------------
async def sigkill_scenario(opts: Options) -> Result:
    rng = random.Random(opts.seed)

    async def body(stage: Stage) -> None:
        r = stage.result
        d = stage.start_daemon()
        first = await d.wait_ready(READY_TIMEOUT_S)
        if first is None:
            await stage.capture(d, "the first daemon was not ready")
            raise RuntimeError("the first daemon was not ready")
        r.figures["first_ready_s"] = round(first, 2)
        feed = stage.feed()
        feed.start()
        ready_s: list[float] = []
        started_s: list[float] = []  # to the log line "adaptd started"
        not_ready = 0
        lives: list[dict[str, Any]] = []
        killed: list[DaemonChild] = []
        dumps = died = 0
        for i in range(opts.kills):
            life = rng.uniform(1.0, 4.0)
            await asyncio.sleep(life)
            if await stage.replace_if_dead(f"before kill {i + 1}"):
                died += 1
                d = stage.current
                await asyncio.sleep(life)
            count = await stage.processed(d)
            lives.append({"daemon": i, "ready_for_s": round(life, 2), "processed": count})
            if (count or 0) == 0 and dumps < 3:
                dumps += 1
                await stage.capture(
                    d, f"daemon {i} processed nothing in {life:.1f} s after /readyz 200"
                )
            d.kill()
            killed.append(d)
            d = stage.start_daemon()
            t = await d.wait_ready(READY_TIMEOUT_S)
            if t is None:
                not_ready += 1
                await stage.capture(d, f"restart {i + 1} not ready in {READY_TIMEOUT_S:.0f} s")
                d.kill()
                d = stage.start_daemon()
                t = await d.wait_ready(READY_TIMEOUT_S)
                if t is None:
                    raise RuntimeError(f"restart {i + 1} not ready twice")
            ready_s.append(t)
            started = d.started_s()
            if started is not None:
                started_s.append(started)
            print(
                f"  kill {i + 1:2d}/{opts.kills} after {life:.1f} s "
                f"(processed {count or 0:.0f}); restarted, ready in {t:.1f} s",
                flush=True,
            )
        # The last daemon runs with the feed a little, then drains what is left.
        await asyncio.sleep(opts.steady_s / 2)
        await feed.stop()
        r.checks.append(await stage.drain(feed))
        last = await stage.current.metrics() or {}
        r.checks.append(await stage.stop_daemon())
        r.checks += await stage.outputs(feed)
        orphans = [pid for k in killed for pid in k.orphans()]
        r.checks.append(
            Check(
                "no daemon exits unless stopped",
                "supervisor_restarts" not in r.figures,
                f"{len(r.figures.get('supervisor_restarts', []))} exited without being stopped",
            )
        )
        r.figures["exited_unasked"] = died
        r.figures.update(
            {
                "kills": len(killed),
                "restarts": len(ready_s),
                "restarts_not_ready_in_time": not_ready,
                "ready_after_restart_s": {
                    k: round(v, 2) if isinstance(v, float) else v
                    for k, v in percentiles(ready_s).items()
                },
                "restart_to_started_log_s": {
                    k: round(v, 2) if isinstance(v, float) else v
                    for k, v in percentiles(started_s).items()
                },
                "processed_per_life": percentiles([x["processed"] or 0 for x in lives]),
                "idle_lives": sum(1 for x in lives if not x["processed"]),
                "last_daemon_processed": last.get("adaptd_events_total"),
                "learners_left_after_kill": len(orphans),
                "lives": lives,
            }
        )
        r.checks.append(
            Check(
                "every restart ready within 60 s",
                not_ready == 0,
                f"{len(ready_s)} restarts, {not_ready} not ready in time; ready p50 "
                f"{r.figures['ready_after_restart_s'].get('p50', 0):.1f} s, max "
                f"{r.figures['ready_after_restart_s'].get('max', 0):.1f} s",
            )
        )
        r.checks.append(
            Check(
                "no learner process outlives its killed daemon",
                not orphans,
                f"{len(orphans)} learner processes still running after their daemon's SIGKILL",
            )
        )

    return await _run_stage("sigkill", opts, body, budget_s=180 + 20 * opts.kills)


# -- 2. Redis -----------------------------------------------------------------------------
async def redis_scenario(opts: Options) -> Result:
    async def body(stage: Stage) -> None:
        r = stage.result
        d = stage.start_daemon()
        if await d.wait_ready(READY_TIMEOUT_S) is None:
            raise RuntimeError("the daemon was not ready")
        feed = stage.feed()
        feed.start()
        stop = asyncio.Event()
        sampler = asyncio.create_task(stage.sample(feed, stop))
        faults = []
        try:
            await asyncio.sleep(opts.steady_s)
            print(f"  SIGSTOP redis (pid {stage.redis.pid}) for {opts.pause_s:.0f} s", flush=True)
            t0 = time.monotonic()
            stage.redis.pause()
            await asyncio.sleep(opts.pause_s)
            stage.redis.resume()
            t1 = time.monotonic()
            faults.append(await stage.recovery(feed, t0, t1, "redis SIGSTOP/SIGCONT"))
            print(f"  {_recovery_line(faults[-1])}", flush=True)
            await asyncio.sleep(opts.steady_s)
            print(
                f"  SIGKILL redis (pid {stage.redis.pid}), restart {opts.redis_down_s:.0f} s "
                f"later on port {stage.redis.port} with its AOF",
                flush=True,
            )
            t0 = time.monotonic()
            stage.redis.kill()
            await asyncio.sleep(opts.redis_down_s)
            await asyncio.to_thread(stage.redis.start)
            t1 = time.monotonic()
            faults.append(await stage.recovery(feed, t0, t1, "redis SIGKILL and restart"))
            faults[-1]["redis_down_s"] = round(t1 - t0, 2)
            print(f"  {_recovery_line(faults[-1])}", flush=True)
            await asyncio.sleep(opts.steady_s)
        finally:
            stop.set()
            await sampler
        await feed.stop()
        r.checks.append(await stage.drain(feed))
        r.checks.append(_kept_running(stage, d))
        r.checks.append(_resumed_check(faults))
        # Counted by every daemon of the scenario (a replacement starts from 0).
        last = await stage.current.metrics() or {}
        errors = last.get("adaptd_redis_errors_total", 0.0) + sum(
            v for pid, v in stage.last_sampled("redis_errors").items() if pid != stage.current.pid
        )
        r.checks.append(await stage.stop_daemon())
        r.checks += await stage.outputs(feed)
        r.figures.update(
            {
                "redis_errors_total": errors,
                "retry_log_lines": sum(x.log_count('"retrying"') for x in stage.daemons),
                "faults": faults,
            }
        )

    return await _run_stage("redis", opts, body, budget_s=240 + 2 * opts.pause_s)


# -- 3. Broker ----------------------------------------------------------------------------
async def broker_scenario(opts: Options) -> Result:
    async def body(stage: Stage) -> None:
        r = stage.result
        r.notes.append(
            "Tansu runs with memory storage: a restarted broker has lost every topic, "
            "committed offset and record, so the broker is only paused (SIGSTOP/SIGCONT), "
            "never restarted."
        )
        d = stage.start_daemon()
        if await d.wait_ready(READY_TIMEOUT_S) is None:
            raise RuntimeError("the daemon was not ready")
        feed = stage.feed()
        feed.start()
        stop = asyncio.Event()
        sampler = asyncio.create_task(stage.sample(feed, stop))
        faults = []
        try:
            await asyncio.sleep(opts.steady_s)
            print(f"  SIGSTOP broker (pid {stage.broker.pid}) for {opts.pause_s:.0f} s", flush=True)
            t0 = time.monotonic()
            stage.broker.pause()
            await asyncio.sleep(opts.pause_s)
            stage.broker.resume()
            t1 = time.monotonic()
            faults.append(await stage.recovery(feed, t0, t1, "broker SIGSTOP/SIGCONT"))
            print(f"  {_recovery_line(faults[-1])}", flush=True)
            await asyncio.sleep(opts.steady_s)
        finally:
            stop.set()
            await sampler
        await feed.stop()
        r.checks.append(await stage.drain(feed))
        last = await stage.current.metrics() or {}
        r.checks.append(_kept_running(stage, d))
        r.checks.append(_resumed_check(faults))
        r.checks.append(await stage.stop_daemon())
        r.checks += await stage.outputs(feed)
        r.figures.update(
            {
                "commit_failures": last.get("adaptd_commits_total{result=failed}", 0.0),
                "send_errors_total": last.get("adaptd_send_errors_total"),
                "publish_errors_total": last.get("adaptd_publish_errors_total"),
                "retry_log_lines": sum(x.log_count('"retrying"') for x in stage.daemons),
                "faults": faults,
            }
        )

    return await _run_stage("broker", opts, body, budget_s=240 + opts.pause_s)


def _kept_running(stage: Stage, first: DaemonChild) -> Check:
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


def _resumed_check(faults: list[dict[str, Any]]) -> Check:
    bad = [f["fault"] for f in faults if f["resume_s"] is None or f["ready_back_s"] is None]
    return Check(
        "processing resumed and /readyz back to 200 after each fault",
        not bad,
        "; ".join(_recovery_line(f) for f in faults),
    )


def _recovery_line(f: dict[str, Any]) -> str:
    def s(x: float | None) -> str:
        return "never (60 s)" if x is None else f"{x:.1f} s"

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
