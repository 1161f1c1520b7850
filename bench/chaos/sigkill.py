"""``sigkill``: the daemon SIGKILLed ``kills`` times, 1-4 s after each start's /readyz 200,
and restarted each time; then the invariants, the restart times and the learners left."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from .invariants import Check, percentiles
from .outputs import check_outputs
from .services import DaemonChild
from .stage import READY_TIMEOUT_S, Options, Result, Stage, run_stage

__all__ = ["sigkill_scenario"]


def _rounded(values: list[float]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in percentiles(values).items()}


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
        r.checks += await check_outputs(stage, feed)
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
                "ready_after_restart_s": _rounded(ready_s),
                "restart_to_started_log_s": _rounded(started_s),
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

    stage = Stage("sigkill", opts, Result("sigkill"))
    return await run_stage(stage, body, budget_s=180 + 20 * opts.kills)
