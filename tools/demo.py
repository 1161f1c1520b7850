"""``adaptd demo``: the whole daemon on real market data, on services it starts itself.

Starts a Tansu broker and a Redis server (REDIS_URL or the local one when reachable),
creates the topics, runs the daemon with the same code as ``adaptd run``, feeds the
Bitcoin, Brent crude and Apple price series shipped in river (each its own stream,
replayed at ``speed`` events per second), watches the shift and policy topics like a
downstream user, and ends with a summary table, a prequential-error table and one PNG
per stream. Everything it started is stopped before it returns.

Each stream runs three policy tasks: the scaled forward return, risk (variance, VaR and
expected shortfall) and strategy selection. After the run, the demo replays what a subscriber
held at each event (:mod:`.served`) and prints the risk and strategy tables; the plots show
forecast against realised volatility and the strategy selected in each regime.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from adaptd.adapters.tasks import series as datasets
from adaptd.daemon.config.settings import Settings, load_settings
from adaptd.daemon.core.policy import PolicyBook, PolicyError, decode_message
from adaptd.daemon.core.signing import Keyring, SignatureError, generate_key_pair
from adaptd.daemon.io.logs import configure
from adaptd.daemon.service.daemon import Daemon

from .embedded import EmbeddedKafka, EmbeddedRedis, create_topics, delete_prefix
from .feed import produce_series
from .report import StreamSummary, margin_for, plot_stream, summary_table
from .served import Received, Served, serve
from .task_report import risk_table, strategy_table


@dataclass
class Watch:
    """What a downstream user sees on the output topics, per stream."""

    shifts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    policies: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    book: PolicyBook = field(default_factory=PolicyBook)
    dead_letters: int = 0
    received: dict[str, Received] = field(default_factory=lambda: defaultdict(list))
    """Per model: every policy accepted, with its stream's event count when it arrived."""
    keyring: Keyring | None = None
    """The public key of the demo's daemon: what a subscriber verifies the policies with."""
    refused: int = 0
    """Policy records that did not verify (none, unless something else writes the topic)."""


def _event_count(daemon: Daemon | None, stream: str) -> int:
    if daemon is None:
        return 0
    for part in daemon.ownership.partitions.values():
        state = part.streams.get(stream)
        if state is not None:
            return state.index
    return 0


async def _watch(settings: Settings, watch: Watch, daemon: Daemon | None = None) -> None:
    k = settings.kafka
    consumer = AIOKafkaConsumer(
        k.shift_topic,
        k.policy_topic,
        k.deadletter_topic,
        bootstrap_servers=k.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            if record.topic == k.shift_topic:
                shift = msgspec.json.decode(record.value or b"{}")
                watch.shifts[shift["stream"]].append(int(shift["index"]))
            elif record.topic == k.policy_topic:
                with contextlib.suppress(PolicyError):
                    if watch.keyring is not None:
                        try:
                            watch.keyring.verify(record.value or b"", record.headers)
                        except SignatureError:
                            watch.refused += 1
                            raise
                    message = decode_message(record.value or b"")
                    if watch.book.offer(message):
                        watch.policies[message.model_id] += 1
                        # From the next event on, a subscriber uses it.
                        at = _event_count(daemon, message.stream)
                        watch.received[message.model_id].append((at, message))
            else:
                watch.dead_letters += 1
    finally:
        await consumer.stop()


def demo_settings(
    bootstrap: str, redis_url: str, prefix: str, signing_key: bytes | None = None
) -> Settings:
    """The demo's embedded defaults: everything else is the daemon's own default. With
    ``signing_key`` (PEM), the daemon signs its policies."""
    return load_settings(
        environ={},
        kafka={"bootstrap_servers": bootstrap, "group_id": f"{prefix}-group"},
        redis={"url": redis_url, "key_prefix": prefix},
        signing={} if signing_key is None else {"key": signing_key.decode()},
        metrics={"host": "127.0.0.1", "port": 0},
        # Three policy tasks per stream: the scaled forward return, risk (variance, VaR and
        # expected shortfall) and strategy selection.
        adaptation={"meta_interval_s": 1.0, "tasks": ["return", "risk", "strategy"]},
        log_level="warning",
    )


def _status(daemon: Daemon, fed: dict[str, int], totals: dict[str, int], watch: Watch) -> Table:
    table = Table(title="adaptd demo: live", expand=False)
    for col in ("stream", "fed", "shifts", "policies"):
        table.add_column(col, justify="right" if col != "stream" else "left")
    for series_stream, total in totals.items():
        done = fed.get(series_stream, 0)
        bar = "█" * int(20 * done / max(total, 1))
        table.add_row(
            series_stream,
            f"{done:>5}/{total} {bar:<20}",
            str(len(watch.shifts.get(series_stream, []))),
            str(watch.policies.get(series_stream, 0)),
        )
    m = daemon.metrics.registry
    rejected = m.get_sample_value("adaptd_adaptations_total", {"outcome": "rejected"}) or 0
    updates = m.get_sample_value("adaptd_meta_updates_total") or 0
    table.caption = (
        f"consumed {daemon.events_seen} events · {watch.dead_letters} dead letters "
        f"· {int(rejected)} adaptations rejected by the gate · "
        f"{int(updates)} meta-updates"
    )
    return table


async def _demo(
    speed: float, limit: int | None, progress: bool, console: Console
) -> tuple[list[StreamSummary], list[Served]]:
    series = datasets.load_all()
    totals = {s.stream: len(s) if limit is None else min(limit, len(s)) for s in series}
    with EmbeddedKafka() as kafka, EmbeddedRedis() as red:
        prefix = f"adaptd-demo-{uuid.uuid4().hex[:8]}"
        # A key pair for this run only: the daemon signs, the watcher verifies, as a
        # subscriber in production does with the daemon's public key.
        private, public = generate_key_pair()
        settings = demo_settings(kafka.bootstrap_servers, red.url, prefix, private)
        k = settings.kafka
        await create_topics(kafka.bootstrap_servers, [k.input_topic], partitions=3)
        await create_topics(
            kafka.bootstrap_servers, [k.policy_topic, k.shift_topic, k.deadletter_topic]
        )
        console.print(
            f"broker {kafka.bootstrap_servers} · redis {red.url} "
            f"({'started' if red.owned else 'existing'}) · key prefix {prefix}"
        )
        daemon = Daemon(settings)
        watch = Watch(keyring=Keyring.from_pem([public]))
        fed: dict[str, int] = {}
        run = asyncio.create_task(daemon.run())
        watcher = asyncio.create_task(_watch(settings, watch, daemon))
        try:
            await daemon.wait_started(run, 60)
            console.print(f"daemon up · metrics on http://127.0.0.1:{daemon.http_port}/metrics")
            started = time.monotonic()
            feed = asyncio.create_task(
                produce_series(
                    kafka.bootstrap_servers,
                    k.input_topic,
                    series,
                    rate=speed,
                    limit=limit,
                    on_progress=lambda stream, n: fed.__setitem__(stream, n),
                )
            )
            total = sum(totals.values())
            with Live(
                _status(daemon, fed, totals, watch),
                console=console,
                refresh_per_second=4,
                transient=not progress,
            ) as live:
                while not (
                    feed.done() and daemon.events_seen >= total and not daemon.publisher.inflight
                ):
                    if run.done() or (feed.done() and feed.exception()):
                        break
                    await asyncio.sleep(0.25)
                    if progress:
                        live.update(_status(daemon, fed, totals, watch))
            await feed
            await asyncio.sleep(1.0)  # let the watcher read the last outputs
            console.print(f"fed and processed {total} events in {time.monotonic() - started:.1f} s")
            accepted = sum(len(r) for r in watch.received.values())
            console.print(
                f"policies signed with key {next(iter(watch.keyring.keys))}: {accepted} verified "
                f"and used, {watch.refused} refused"
            )
        finally:
            daemon.stop()
            await asyncio.gather(run, return_exceptions=True)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        summaries = _summaries(series, totals, daemon, watch)
        _prequential_table(daemon, console)
        await delete_prefix(red.url, prefix)
    served = [
        serve(s, settings, watch.received, totals[s.stream], watch.shifts.get(s.stream, []))
        for s in series
    ]
    console.print(risk_table(served))
    console.print(strategy_table(served))
    return summaries, served


def _summaries(
    series: list[datasets.MarketSeries], totals: dict[str, int], daemon: Daemon, watch: Watch
) -> list[StreamSummary]:
    rows = []
    for s in series:
        records = [r for r in daemon.publisher.history if r.stream == s.stream]
        published = [r for r in records if r.published]
        n = totals[s.stream]
        rows.append(
            StreamSummary(
                stream=s.stream,
                name=s.name,
                events=n,
                shifts=sorted(watch.shifts.get(s.stream, [])),
                annotated=tuple(a for a in s.annotated_rows() if a < n),
                published=len(published),  # every task's
                rejected=len(records) - len(published),
                adapt_latency_ms=[r.seconds * 1000 for r in records],
                loss_before=[r.query_loss_before for r in records],
                loss_after=[r.query_loss_after for r in records],
                loss_scratch=[r.query_loss_scratch for r in records],
                published_rows=[r.index for r in published],
            )
        )
    return rows


def _prequential_table(daemon: Daemon, console: Console) -> None:
    """Test-then-train loss of each task's live policy (the meta-learned initialisation until
    one is published, as the daemon scores it), of the initialisation, and of the task's
    baseline, per stream."""
    table = Table(title="prequential loss (each example scored before any policy saw it)")
    for col in (
        "stream",
        "task",
        "loss",
        "examples",
        "live (or init)",
        "no adaptation",
        "baseline",
    ):
        table.add_column(col, justify="left" if col in ("stream", "task", "loss") else "right")
    for part in daemon.ownership.partitions.values():
        for name, state in sorted(part.streams.items()):
            for track in state.tracks:
                live, init, base, n = track.scores.mean()
                task = track.config.task
                table.add_row(
                    name,
                    task.name,
                    task.loss,
                    str(n),
                    f"{live:.4f}",
                    f"{init:.4f}",
                    f"{base:.4f} ({track.scores.baseline.name})",
                )
    console.print(table)


def run_demo(
    *,
    speed: float = 400.0,
    out: Path = Path("adaptd-demo-output"),
    limit: int | None = None,
    progress: bool = True,
) -> int:
    configure("warning", "console")
    # Outside a terminal rich assumes 80 columns, too narrow for the summary table.
    console = Console(width=None if sys.stdout.isatty() else 140)
    started = time.monotonic()
    summaries, served = asyncio.run(_demo(speed, limit, progress, console))
    by_stream = {s.stream: s for s in served}
    series = {s.stream: s for s in datasets.load_all()}
    margins = {name: margin_for(s) for name, s in series.items()}
    console.print(summary_table(summaries, margins))
    out.mkdir(parents=True, exist_ok=True)
    for summary in summaries:
        path = plot_stream(
            series[summary.stream],
            summary,
            out / f"{summary.name}.png",
            margin=margins[summary.stream],
            served=by_stream.get(summary.stream),
        )
        console.print(f"wrote {path}")
    latencies = [x for s in summaries for x in s.adapt_latency_ms]
    if latencies:
        console.print(
            f"adaptation latency over all streams: p50 "
            f"{np.percentile(latencies, 50):.1f} ms, p99 "
            f"{np.percentile(latencies, 99):.1f} ms"
        )
    console.print(f"plots in {out.resolve()} · demo took {time.monotonic() - started:.0f} s")
    return 0
