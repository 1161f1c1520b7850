"""``soak``: one daemon kept adapting (:mod:`.churn`, ``soak_rate`` records/s) until it has
done ``soak_adaptations`` adaptations (10,000), or ``soak_timeout_s`` has passed.

Every ``soak_sample_s`` (2 s): the daemon's resident memory, open descriptors and threads
(/proc), its learner process's resident memory, and its asyncio tasks and event-loop lag
(/metrics, ``adaptd_event_loop_tasks`` is set every 2 s). Reported at the start, at each
quarter of the target and at the end, with each figure's trend over the second half (least
squares, per 1,000 adaptations). Checks, beyond the usual ones: the target reached, and each
figure bounded: its maximum (the tasks: their median) in the last quarter not above its
second quarter's by more than :data:`BOUNDS` says (10 % for memory; 4 descriptors besides
the Redis connections, 2 threads, 16 tasks for the counts that move with connections and
in-flight adaptations), and the Redis connections within the pool's bound.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from adaptd.daemon.config.connections import RedisSettings

from .churn import Pulse, start_adapting
from .growth import Bound, check_bounded, quarter_points, slope, spread
from .invariants import Check
from .learner import millis
from .stage import Options, Result, Stage, run_stage
from .steady import settle

__all__ = ["BOUNDS", "soak_scenario"]

BOUNDS = {
    "rss_kb": Bound("daemon RSS (kB)", ratio=0.10),
    "learner_rss_kb": Bound("learner RSS (kB)", ratio=0.10),
    "fds_other": Bound("daemon descriptors besides its Redis connections", slack=4),
    "threads": Bound("daemon threads", slack=2),
    "tasks": Bound("daemon asyncio tasks", slack=16, statistic="median"),
}
"""How much each figure may grow from the second quarter to the last, stated before the
first run (not fitted to it). Tasks are compared by their medians since the runs of
2026-12-07 showed them following the adaptations in flight (30,000 adaptations: per-quarter
medians 24.5, 31, 31, 29 tasks and 4, 12, 12, 10 in flight, maxima 42-58): a maximum
against a maximum measured the busiest sample, and failed the 10,000 run (62 against 36)
with no leak; a leak raises the median. Descriptors are counted without the Redis pool's
connections, which grow with the busiest moment up to ``redis.max_connections`` (checked
apart: :func:`_redis_pool_check`)."""


def _point(s: dict[str, Any]) -> dict[str, Any]:
    mb = {
        k: None if s.get(k) is None else round(s[k] / 1024, 1) for k in ("rss_kb", "learner_rss_kb")
    }
    return {
        "adaptations": s.get("adaptations"),
        "t_s": s["t"],
        "rss_mb": mb["rss_kb"],
        "learner_rss_mb": mb["learner_rss_kb"],
        "fds": s.get("fds"),
        "redis_connections": s.get("redis_connections"),
        "threads": s.get("threads"),
        "tasks": s.get("tasks"),
        "in_flight": s.get("in_flight"),
        "consumer_lag": s.get("consumer_lag"),
    }


async def soak_scenario(opts: Options) -> Result:
    target = opts.soak_adaptations

    async def body(stage: Stage) -> None:
        r = stage.result
        until = f"until {target:,} adaptations (at most {opts.soak_timeout_s:.0f} s)"
        d, feed = await start_adapting(stage, opts.soak_rate, until)
        t0 = time.monotonic()
        done = 0.0
        async with Pulse(stage, opts.soak_sample_s, proc=True) as pulse:
            next_line = t0 + 60
            while done < target and time.monotonic() - t0 < opts.soak_timeout_s:
                await asyncio.sleep(opts.soak_sample_s)
                mine = pulse.of(d.pid)
                done = mine[-1]["adaptations"] if mine else 0.0
                if time.monotonic() >= next_line and mine:
                    next_line += 60
                    print(f"  {time.monotonic() - t0:.0f} s: {_point(mine[-1])}", flush=True)
        soak_s = time.monotonic() - t0
        mine = pulse.of(d.pid)

        def before_stop(last: dict[str, float]) -> list[Check]:
            reached = Check(
                f"{target:,} adaptations within {opts.soak_timeout_s:.0f} s",
                done >= target,
                f"{done:,.0f} adaptations in {soak_s:.0f} s "
                f"({done / soak_s:.1f}/s, {feed.sent:,} records fed)",
            )
            return [reached, _redis_pool_check(mine, stage)] + [
                check_bounded(mine, key, bound, "adaptations", target)
                for key, bound in BOUNDS.items()
            ]

        await settle(stage, d, feed, before_stop)
        half = [s for s in mine if (s.get("adaptations") or 0) >= target / 2]
        r.figures.update(
            {
                "adaptations": done,
                "soak_s": round(soak_s, 1),
                "adaptations_per_s": round(done / soak_s, 1) if soak_s else None,
                **{
                    f"at {label}": _point(s)
                    for label, s in quarter_points(mine, "adaptations", target)
                },
                "trend_second_half_per_1000_adaptations": {
                    key: _rounded_slope(half, key) for key in BOUNDS
                },
                "event_loop_lag_ms": millis(
                    spread(s["lag_s"] for s in mine if s["lag_s"] is not None)
                ),
                "samples": len(mine),
            }
        )
        r.figures["series"] = [_point(s) for s in mine[:: max(1, len(mine) // 200)]]

    stage = Stage("soak", opts, Result("soak"))
    return await run_stage(stage, body, budget_s=opts.soak_timeout_s + 300)


def _redis_pool_check(samples: list[dict[str, Any]], stage: Stage) -> Check:
    """The daemon's connections to Redis never above its ``redis.max_connections``."""
    configured = stage.daemon_settings.get("ADAPTD_REDIS__MAX_CONNECTIONS")
    bound = int(configured) if configured else RedisSettings().max_connections
    counts = [s["redis_connections"] for s in samples if s.get("redis_connections") is not None]
    most = max(counts, default=None)
    return Check(
        f"Redis connections within redis.max_connections ({bound})",
        most is not None and most <= bound,
        "not sampled" if most is None else f"at most {most} (first {counts[0]}, last {counts[-1]})",
        {"max": most, "bound": bound},
    )


def _rounded_slope(samples: list[dict[str, Any]], key: str) -> float | None:
    points = [(s["adaptations"] / 1000, s[key]) for s in samples if s.get(key) is not None]
    value = slope(points)
    return None if value is None else round(value, 2)
