"""``redis_full``: Redis out of memory under a running daemon. redis-server starts with a small
``maxmemory`` and ``noeviction``; the daemon's writes grow it until Redis refuses them with
OOM errors (reads, PING and deletes still answer). It stays full for ``full_s``, then
``CONFIG SET maxmemory`` raises the limit.

Expected: the daemon neither exits nor skips anything; it retries, commits no offset whose
effects are not stored (:class:`.ledger.Ledger` watches the commits against the snapshots in
Redis) and catches up once Redis takes writes again. Figures: when Redis filled up, what
/readyz said while it was full, how far the commits moved meanwhile, the OOM refusals and
the daemon's retries by what it retried (with the first error, from its log).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .invariants import check_commits_stored
from .ledger import Ledger, commits_moved, first_not_ready
from .logscan import retries_by_what
from .recovery import Watch
from .services import AofRedis
from .stage import Options, Result, Stage, run_stage
from .steady import through_faults

__all__ = ["redis_full_scenario"]

FILL_TIMEOUT_S = 90.0
"""How long the feed may take to fill Redis up to ``redis_maxmemory``."""
RAISED_MAXMEMORY = "256mb"
"""The limit once raised: a raise, not a removal (``noeviction`` stays)."""
CATCH_UP_WAIT_S = 180.0
"""A backlog of ``full_s`` of feed takes longer than the other faults' to catch up on."""


async def redis_full_scenario(opts: Options) -> Result:
    name = "redis_full"
    redis = AofRedis(opts.work / name / "redis", maxmemory=opts.redis_maxmemory)
    stage = Stage(name, opts, Result(name), redis=redis)
    ledger = Ledger(stage)

    async def fill(watch: Watch) -> dict[str, Any]:
        full = await ledger.wait_oom(FILL_TIMEOUT_S)
        if full is None:
            used = ledger.samples[-1].used_memory if ledger.samples else None
            raise RuntimeError(
                f"Redis refused no write in {FILL_TIMEOUT_S:.0f} s at maxmemory "
                f"{opts.redis_maxmemory} ({used} bytes used): lower --redis-maxmemory"
            )
        print(
            f"  Redis full at {full.used_memory:,} bytes (maxmemory {opts.redis_maxmemory}); "
            f"held {opts.full_s:.0f} s, then maxmemory {RAISED_MAXMEMORY}",
            flush=True,
        )
        await asyncio.sleep(max(0.0, full.t + opts.full_s - time.monotonic()))
        # Through the ledger's own connection: CONFIG SET is allowed while Redis is full.
        await asyncio.wait_for(ledger.redis.config_set("maxmemory", RAISED_MAXMEMORY), 10)
        raised = time.monotonic()
        fault = await watch.recovery(
            full.t, raised, "redis full (OOM), then maxmemory raised", CATCH_UP_WAIT_S
        )
        window = ledger.between(full.t, raised)
        not_ready_s, failing = first_not_ready(watch.during(full.t, raised), full.t)
        errors = [s["redis_errors"] for s in watch.during(full.t, raised)]
        errors = [e for e in errors if e is not None]
        fault.update(
            {
                "full_after_feed_s": round(full.t - watch.samples[0]["t"], 1),
                "used_memory_when_full": full.used_memory,
                "oom_refusals": (window[-1].oom if window else full.oom),
                "daemon_redis_errors_while_full": (errors[-1] - errors[0]) if errors else None,
                "readyz_not_ready_after_s": not_ready_s,
                "readyz_failing_checks": failing,
                "commits_while_full": commits_moved(window, full.t),
            }
        )
        return fault

    def figures(watch: Watch, last: dict[str, float]) -> dict[str, Any]:
        return {
            "redis_maxmemory": opts.redis_maxmemory,
            "redis_errors_total": last.get("adaptd_redis_errors_total"),
            "publish_errors_total": last.get("adaptd_publish_errors_total"),
            "meta_errors_total": last.get("adaptd_meta_errors_total"),
            "partition_stalls_total": last.get("adaptd_partition_stalls_total"),
        }

    async def body(stage: Stage) -> None:
        async with ledger:
            run = await through_faults(stage, [fill], figures)
        r = stage.result
        r.checks.append(check_commits_stored(ledger.pairs()))
        r.figures["retries"] = retries_by_what(
            line for d in stage.daemons for line in d.log_lines()
        )
        r.figures["ledger_samples"] = len(ledger.samples)
        r.figures["ledger_failed_reads"] = ledger.failed_reads
        r.notes.append(
            f"{len(run.faults)} fault(s); Redis refuses writes beyond maxmemory "
            f"{opts.redis_maxmemory} with noeviction, and answers PING and reads meanwhile."
        )

    return await run_stage(stage, body, budget_s=300 + opts.full_s + CATCH_UP_WAIT_S)
