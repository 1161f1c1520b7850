"""The services paused and killed under a running daemon: ``redis`` (SIGSTOP for
``pause_s``, later SIGKILL and a restart from its AOF) and ``broker`` (SIGSTOP for
``pause_s``; Tansu keeps its data in memory, so it is never restarted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .recovery import Watch
from .services import AofRedis, Broker
from .stage import Options, Result, Stage, run_stage
from .steady import Injection, kafka_errors, through_faults, timed_fault

__all__ = ["broker_scenario", "redis_scenario"]


def _sigstop(label: str, server: Callable[[Stage], AofRedis | Broker], hold_s: float) -> Injection:
    async def pause(watch: Watch) -> dict[str, Any]:
        target = server(watch.stage)
        print(f"  SIGSTOP {label} (pid {target.pid}) for {hold_s:.0f} s", flush=True)
        return await timed_fault(
            watch, f"{label} SIGSTOP/SIGCONT", target.pause, target.resume, hold_s
        )

    return pause


async def redis_scenario(opts: Options) -> Result:
    pause = _sigstop("redis", lambda stage: stage.redis, opts.pause_s)

    async def kill(watch: Watch) -> dict[str, Any]:
        redis = watch.stage.redis
        print(
            f"  SIGKILL redis (pid {redis.pid}), restart {opts.redis_down_s:.0f} s "
            f"later on port {redis.port} with its AOF",
            flush=True,
        )
        t0 = time.monotonic()
        redis.kill()
        await asyncio.sleep(opts.redis_down_s)
        await asyncio.to_thread(redis.start)
        t1 = time.monotonic()
        fault = await watch.recovery(t0, t1, "redis SIGKILL and restart")
        # From the kill to Redis answering PING again, its AOF replayed.
        fault["redis_down_s"] = round(t1 - t0, 2)
        return fault

    def figures(watch: Watch, last: dict[str, float]) -> dict[str, Any]:
        # Counted by every daemon of the scenario (a replacement starts from 0).
        current = watch.stage.current.pid
        errors = last.get("adaptd_redis_errors_total", 0.0) + sum(
            v for pid, v in watch.last_sampled("redis_errors").items() if pid != current
        )
        return {"redis_errors_total": errors}

    async def body(stage: Stage) -> None:
        await through_faults(stage, [pause, kill], figures)

    stage = Stage("redis", opts, Result("redis"))
    return await run_stage(stage, body, budget_s=240 + 2 * opts.pause_s)


async def broker_scenario(opts: Options) -> Result:
    pause = _sigstop("broker", lambda stage: stage.broker, opts.pause_s)

    def figures(watch: Watch, last: dict[str, float]) -> dict[str, Any]:
        return kafka_errors(last)

    async def body(stage: Stage) -> None:
        stage.result.notes.append(
            "Tansu runs with memory storage: a restarted broker has lost every topic, "
            "committed offset and record, so the broker is only paused (SIGSTOP/SIGCONT), "
            "never restarted."
        )
        await through_faults(stage, [pause], figures)

    stage = Stage("broker", opts, Result("broker"))
    return await run_stage(stage, body, budget_s=240 + opts.pause_s)
