"""``make bench`` (``python -m bench.ingest``): ingest throughput against raw aiokafka loops,
adaptation latencies.

One process, one broker, one topic, so the ratios compare like with like:

1. ``raw``: an aiokafka ``getmany`` loop that only counts records;
2. ``reference``: the loop the issue describes (msgspec decode, EW mean and variance of
   returns, one river ADWIN update per event);
3. ``daemon``: adaptd itself in bounded mode (decode, validation, features, labels,
   detectors, episodes to Redis, snapshots, commits, adaptations on the torch worker).

The input is synthetic: ``streams`` random walks with a regime change (drift and
volatility) every ``regime_len`` events, so shifts and adaptations happen during the
run. Also measured: the inner-loop micro-benchmark (torch.autograd.grad against
torch.func.grad), adaptation latency and shift-to-publish latency p50/p99 from the
daemon run, then the same events through a daemon running every policy task (return, risk,
strategy) with those latencies per task, and from the adaptation set's completion to the
publication (ready-to-publish: what the daemon itself takes, without the wait for the
shots' labels), then every task once more with the events written at a fixed rate while the
daemon runs (``--paced-rate``, 2,000 events/s: a live feed below capacity, where the other
passes measure a backlog being drained), and peak RSS. Results are printed and written as
JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer
from river.drift import ADWIN

from adaptd.daemon.cli import run_as_service
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.service.daemon import Daemon
from adaptd.tools.embedded import EmbeddedKafka, EmbeddedRedis, create_topics, delete_prefix

from .machine import machine
from .paced import paced_feed
from .synthetic import produce, synthetic_events

DEFAULT_GC_THRESHOLD = gc.get_threshold()


ALL_TASKS = ("return", "risk", "strategy")


async def _consume_loop(bootstrap: str, topic: str, total: int, work: bool) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
    )
    await consumer.start()
    decoder = msgspec.json.Decoder()
    state: dict[str, list[Any]] = {}
    n = 0
    start = None
    try:
        while n < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if start is None and batch:
                start = time.perf_counter()
            for records in batch.values():
                n += len(records)
                if not work:
                    continue
                for r in records:
                    ev = decoder.decode(r.value)
                    st = state.get(ev["stream"])
                    if st is None:
                        st = state[ev["stream"]] = [math.log(ev["price"]), 0.0, 1e-4, ADWIN()]
                    lp = math.log(ev["price"])
                    ret = lp - st[0]
                    st[0] = lp
                    d = ret - st[1]
                    st[1] += 0.05 * d
                    st[2] = 0.95 * (st[2] + 0.05 * d * d)
                    st[3].update(ret)
        return n / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


async def _daemon_run(
    bootstrap: str,
    redis_url: str,
    topic: str,
    total: int,
    tasks: tuple[str, ...] = ("return",),
    *,
    create_outputs: bool = True,
    feed: Callable[[], Awaitable[float]] | None = None,
) -> dict[str, Any]:
    """One daemon over ``total`` events of ``topic``: already there, or written by ``feed``
    (started once the daemon is, and returning the rate it achieved) while it runs."""
    prefix = f"adaptd-bench-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        environ={},
        kafka={
            "bootstrap_servers": bootstrap,
            "group_id": prefix,
            "input_topic": topic,
            "policy_topic": f"{topic}.policies",
            "shift_topic": f"{topic}.shifts",
            "deadletter_topic": f"{topic}.dl",
        },
        redis={"url": redis_url, "key_prefix": prefix},
        metrics={"enabled": False},
        adaptation={"tasks": list(tasks)},
        log_level="warning",
    )
    outputs = [f"{topic}.policies", f"{topic}.shifts", f"{topic}.dl"]
    if create_outputs:  # the first run on a topic
        await create_topics(bootstrap, outputs)
    daemon = Daemon(settings)
    lags: list[float] = []
    probe = asyncio.create_task(_probe_loop(lags))
    # As `adaptd run` runs it (with its collector tuning), not as a bare embedded Daemon.
    task = asyncio.create_task(run_as_service(daemon, max_events=total))
    await daemon.wait_started(task)  # a daemon that fails to start is not waited for
    feeder = asyncio.create_task(feed()) if feed is not None else None
    if feeder is not None:  # a feed that fails would leave the daemon waiting for its events
        feeder.add_done_callback(lambda f: f.cancelled() or f.exception() is None or daemon.stop())
    # Time from the first processed batch, as for the baselines.
    while daemon.events_seen == 0 and not task.done():  # noqa: ASYNC110 - a 1 ms probe
        await asyncio.sleep(0.001)
    start = time.perf_counter()
    first = daemon.events_seen
    await task
    probe.cancel()
    fed = await feeder if feeder is not None else None
    # The collector as the rest of the benchmark (the inner loop) expects it.
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_GC_THRESHOLD)
    rate = (daemon.events_seen - first) / (time.perf_counter() - start)
    history = list(daemon.publisher.history)
    reg = daemon.metrics.registry
    await delete_prefix(redis_url, prefix)
    adapt = [r.seconds for r in history]
    s2p = [r.shift_to_publish_s for r in history if r.published]
    return {
        "events_per_s": rate,
        "feed_events_per_s": fed,
        "shifts": sum(
            v.value
            for fam in reg.collect()
            if fam.name == "adaptd_shifts"
            for v in fam.samples
            if v.name.endswith("_total")
        ),
        "adaptations": len(history),
        "published": sum(r.published for r in history),
        "adaptation_latency_ms": _pcts(adapt),
        "shift_to_publish_ms": _pcts(s2p),
        "loop_lag_ms": _pcts(lags),
        "by_task": {
            task: {
                "adaptations": sum(r.task == task for r in history),
                "published": sum(r.published for r in history if r.task == task),
                "adaptation_latency_ms": _pcts([r.seconds for r in history if r.task == task]),
                "shift_to_publish_ms": _pcts(
                    [r.shift_to_publish_s for r in history if r.published and r.task == task]
                ),
                "ready_to_publish_ms": _pcts(
                    [r.ready_to_publish_s for r in history if r.published and r.task == task]
                ),
                # Of ready-to-publish: the wait until the learner starts the adaptation.
                "queued_ms": _pcts([r.queued_s for r in history if r.published and r.task == task]),
            }
            for task in tasks
        },
    }


async def _probe_loop(lags: list[float], every_s: float = 0.005) -> None:
    """How late a short timer runs on the daemon's loop: what the consumer group's heartbeat
    and fetches wait while batches are processed and the learner adapts and meta-trains."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(every_s)
        lags.append(max(loop.time() - before - every_s, 0.0))


def _short(p: dict[str, float | int]) -> str:
    return f"{p['p50']:.0f}/{p['p99']:.0f}" if p.get("n") else "-"


def _pcts(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values) * 1000
    return {
        "n": len(values),
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


async def _paced(bootstrap: str, redis_url: str, streams: int, rate: float) -> dict[str, Any]:
    """Every task, the streams' shifts staggered, the events written at ``rate`` per second
    while the daemon runs: the latencies a live deployment below capacity sees. A regime
    lasts 500 events of a stream (5 s at 2,000 events/s over 20 streams), so the run of
    about 40 s holds some 160 shifts."""
    per_stream, regime_len = 4_000, 500
    topic = f"bench.paced.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [topic], partitions=3)

    def feed() -> Awaitable[float]:
        return paced_feed(bootstrap, topic, streams, per_stream, regime_len, rate)

    total = streams * per_stream
    result = await _daemon_run(bootstrap, redis_url, topic, total, ALL_TASKS, feed=feed)
    result["offered_events_per_s"] = rate
    return result


async def _bench(events: int, streams: int, paced_rate: float) -> dict[str, Any]:
    per_stream = max(events // streams, 1)
    data = synthetic_events(streams, per_stream, regime_len=2000)
    total = len(data)
    with EmbeddedKafka() as kafka, EmbeddedRedis() as red:
        topic = f"bench.{uuid.uuid4().hex[:8]}"
        await create_topics(kafka.bootstrap_servers, [topic], partitions=3)
        await produce(kafka.bootstrap_servers, topic, data)
        raw = await _consume_loop(kafka.bootstrap_servers, topic, total, work=False)
        reference = await _consume_loop(kafka.bootstrap_servers, topic, total, work=True)
        daemon = await _daemon_run(kafka.bootstrap_servers, red.url, topic, total)
        # The same events with every policy task: the cost of each (a second consumer group).
        # Every stream shifts at the same events here, so each shift queues one adaptation
        # per stream and task at once on the one learner: the worst case.
        tasks = await _daemon_run(
            kafka.bootstrap_servers, red.url, topic, total, ALL_TASKS, create_outputs=False
        )
        # And with the streams' shifts spread over each regime, as independent markets are.
        spread = f"{topic}.staggered"
        await create_topics(kafka.bootstrap_servers, [spread], partitions=3)
        await produce(
            kafka.bootstrap_servers,
            spread,
            synthetic_events(streams, per_stream, regime_len=2000, stagger=True),
        )
        staggered = await _daemon_run(kafka.bootstrap_servers, red.url, spread, total, ALL_TASKS)
        paced = (
            await _paced(kafka.bootstrap_servers, red.url, streams, paced_rate)
            if paced_rate > 0
            else None
        )
    return {
        "events": total,
        "streams": streams,
        "raw_loop_events_per_s": raw,
        "reference_loop_events_per_s": reference,
        "daemon": daemon,
        "ratio_vs_raw": daemon["events_per_s"] / raw,
        "ratio_vs_reference": daemon["events_per_s"] / reference,
        "all_tasks": tasks,
        "all_tasks_staggered_shifts": staggered,
        "all_tasks_paced": paced,
    }


def run_bench(
    *, out: Path, events: int = 200_000, streams: int = 20, paced_rate: float = 2_000.0
) -> int:
    from adaptd.daemon.io.logs import configure
    from bench import inner as bench_inner

    configure("warning", "console")

    result: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M")}
    result["ingest"] = asyncio.run(_bench(events, streams, paced_rate))
    # Before torch is imported here: the daemon's own process never imports it.
    result["peak_rss_mb"] = {
        "daemon_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    result["inner_loop"] = bench_inner.run()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    ing = result["ingest"]
    d = ing["daemon"]
    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    print(f"events: {ing['events']} in {ing['streams']} streams")
    print(f"raw aiokafka loop:       {ing['raw_loop_events_per_s']:>10,.0f} events/s")
    print(
        f"reference loop:          {ing['reference_loop_events_per_s']:>10,.0f} events/s "
        "(decode + EW stats + ADWIN)"
    )
    print(
        f"adaptd daemon:           {d['events_per_s']:>10,.0f} events/s "
        f"({ing['ratio_vs_raw']:.0%} of raw, {ing['ratio_vs_reference']:.0%} of reference)"
    )
    print(f"shifts {d['shifts']:.0f}, adaptations {d['adaptations']}, published {d['published']}")
    print(f"adaptation latency ms:   {d['adaptation_latency_ms']}")
    print(f"shift-to-publish ms:     {d['shift_to_publish_ms']}")
    print(f"event-loop lag ms:       {d['loop_lag_ms']} (a 5 ms timer, during the run)")
    for key, what in (
        ("all_tasks", "shifts at once in every stream"),
        ("all_tasks_staggered_shifts", "shifts staggered"),
        ("all_tasks_paced", "shifts staggered, events written at a fixed rate"),
    ):
        a = ing[key]
        if a is None:
            continue
        lag = a["loop_lag_ms"]
        fed = a.get("feed_events_per_s")
        rate = (
            f"{fed:,.0f} events/s written (asked {a['offered_events_per_s']:,.0f})"
            if fed
            else f"{a['events_per_s']:,.0f} events/s"
        )
        print(
            f"tasks {', '.join(ALL_TASKS)}, {what}: {rate}; "
            f"event-loop lag ms p50/p99/max {_short(lag)}/{lag.get('max', 0):.0f}"
        )
        for name, t in a["by_task"].items():
            print(
                f"  {name:9s} adaptations {t['adaptations']}, published {t['published']}; "
                f"ms p50/p99: adaptation {_short(t['adaptation_latency_ms'])}, "
                f"shift-to-publish {_short(t['shift_to_publish_ms'])}, "
                f"ready-to-publish {_short(t['ready_to_publish_ms'])} "
                f"(of it queued {_short(t.get('queued_ms', {}))})"
            )
    rss = result["peak_rss_mb"]
    print(
        f"peak RSS: {rss['daemon_process']:.0f} MB (daemon process, with the benchmark's "
        f"data), {rss['largest_child']:.0f} MB (largest child: learner or broker)"
    )
    inner = result["inner_loop"]
    print(bench_inner.format_result(inner))
    print(f"written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/ingest.json"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=2_000.0,
        help="events/s of the fixed-rate pass (0: leave it out)",
    )
    args = parser.parse_args(argv)
    return run_bench(out=args.out, events=args.events, paced_rate=args.paced_rate)


if __name__ == "__main__":
    raise SystemExit(main())
