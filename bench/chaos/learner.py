"""``learner``: a daemon that adapts continuously (:mod:`.churn`) while its event loop, and
the consumer group's heartbeat that runs on it, must keep up.

Its /metrics is read every ``lag_sample_s`` (0.1 s) for ``learner_s``: the event-loop lag
gauge (how late a 100 ms ``asyncio.sleep`` woke, the last measurement; reading every 0.1 s
sees most of them, not all), how long /metrics took to answer (served on the same loop) and
the adaptations done. Checks, beyond the usual ones: lag p99 under 100 ms, an adaptation
at least every 10 s from the first on (the detectors warm up first), and the group never
took the daemon's partitions back (one "partitions assigned" in its log up to its stop, no
"partitions revoked", no heartbeat or rebalance line from aiokafka).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .churn import Pulse, start_adapting
from .growth import check_membership, longest_idle, spread
from .invariants import Check
from .stage import Options, Result, Stage, round2, run_stage
from .steady import settle

__all__ = ["LAG_P99_LIMIT_S", "learner_scenario", "millis"]

LAG_P99_LIMIT_S = 0.1
"""The issue's bound on the event loop's lag while the learner adapts."""
IDLE_LIMIT_S = 10.0
"""The longest the learner may go without finishing an adaptation and still be called
continuously adapting."""


def millis(values: dict[str, Any]) -> dict[str, Any]:
    """A :func:`.growth.spread` of seconds, in milliseconds."""
    return {k: v if k == "n" or v is None else round(v * 1000, 1) for k, v in values.items()}


def lag_check(lags: list[float]) -> Check:
    p99 = spread(lags)["p99"]
    return Check(
        f"event-loop lag p99 under {LAG_P99_LIMIT_S * 1000:.0f} ms",
        p99 is not None and p99 < LAG_P99_LIMIT_S,
        f"{len(lags)} samples: " + ", ".join(f"{k} {v}" for k, v in millis(spread(lags)).items()),
    )


async def learner_scenario(opts: Options) -> Result:
    async def body(stage: Stage) -> None:
        r = stage.result
        watched = f"/metrics every {opts.lag_sample_s} s for {opts.learner_s:.0f} s"
        d, feed = await start_adapting(stage, opts.learner_rate, watched)
        async with Pulse(stage, opts.lag_sample_s) as pulse:
            await asyncio.sleep(opts.learner_s)
        mine = pulse.of(d.pid)
        lags = [s["lag_s"] for s in mine if s["lag_s"] is not None]
        done = [(s["t"], s["adaptations"]) for s in mine]
        # Each stream's detectors warm up first (detection.warmup_events): the learner is
        # judged from its first adaptation on.
        first, idle = longest_idle(done)
        adapted = done[-1][1] - done[0][1] if done else 0.0
        span = done[-1][0] - done[0][0] if len(done) > 1 else 0.0

        def before_stop(last: dict[str, float]) -> list[Check]:
            return [
                lag_check(lags),
                Check(
                    f"the learner adapted throughout (never {IDLE_LIMIT_S:.0f} s without)",
                    first is not None and idle < IDLE_LIMIT_S,
                    f"{adapted:,.0f} adaptations in {span:.0f} s, the first "
                    f"{'never' if first is None else f'after {first:.1f} s'}, longest "
                    f"without one after it {idle:.1f} s",
                ),
                check_membership(d.log_lines()),
            ]

        last = await settle(stage, d, feed, before_stop)
        r.figures.update(
            {
                "event_loop_lag_ms": millis(spread(lags)),
                "metrics_answer_ms": millis(spread(s["scrape_s"] for s in mine)),
                "metrics_unanswered": sum(
                    "adaptations" not in s for s in pulse.samples if s["pid"] == d.pid
                ),
                "adaptations": adapted,
                "adaptations_per_s": round2(adapted / span) if span else None,
                "adaptations_by_outcome": {
                    k.split("=")[1].rstrip("}"): v
                    for k, v in last.items()
                    if k.startswith("adaptd_adaptations_total{")
                },
                "first_adaptation_after_s": first,
                "longest_without_adaptation_s": round(idle, 1),
                "meta_updates": last.get("adaptd_meta_updates_total"),
                "shifts": last.get("adaptd_shifts_total"),
                "events_processed": last.get("adaptd_events_total"),
            }
        )

    stage = Stage("learner", opts, Result("learner"))
    return await run_stage(stage, body, budget_s=opts.learner_s + 300)
