"""The ``adaptd`` command.

    adaptd run [--config FILE]            the long-running service
    adaptd demo [--speed R] [--out DIR]   embedded broker + Redis, real market data, report
    adaptd feed --dataset all|bitcoin|brent|apple | --csv FILE --stream ID ...
    adaptd policies [--follow]            tail the policy topic readably
    adaptd config show [--config FILE]    the effective configuration, secrets redacted
    adaptd config docs                    the configuration reference, as Markdown
    adaptd bench [--out FILE]             ingest and adaptation benchmark

Invalid configuration exits with status 2 and a message naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from adaptd.daemon import __version__
from adaptd.daemon.settings import ConfigError, Settings, load_settings, redacted

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptd", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"adaptd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", type=Path, help="YAML or TOML settings file")
        return sp

    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--max-events", type=int, help="stop after this many input records")
    run.add_argument("--idle-timeout", type=float, help="stop after this many idle seconds")

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    with_config(cfg_sub.add_parser("show", help="print the effective configuration"))
    cfg_sub.add_parser("docs", help="print the configuration reference (Markdown)")

    feed = with_config(sub.add_parser("feed", help="produce a market feed into the input topic"))
    src = feed.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["all", "bitcoin", "brent", "apple"])
    src.add_argument("--csv", type=Path, help="CSV file with a time and a price column")
    feed.add_argument("--stream", help="stream id for --csv")
    feed.add_argument("--time-col", default="date")
    feed.add_argument("--price-col", default="price")
    feed.add_argument("--volume-col")
    feed.add_argument("--bid-col")
    feed.add_argument("--ask-col")
    feed.add_argument("--time-format", help="strptime format of the time column")
    feed.add_argument("--rate", type=float, default=100.0, help="events/s per stream (0: max)")
    feed.add_argument("--limit", type=int, help="at most this many events per stream")
    feed.add_argument("--topic", help="default: kafka.input_topic")

    pol = with_config(sub.add_parser("policies", help="tail the policy topic"))
    pol.add_argument("--follow", action="store_true", help="keep waiting for new policies")
    pol.add_argument("--json", action="store_true", help="one JSON summary per line")

    demo = sub.add_parser("demo", help="the end-to-end demo on embedded services")
    demo.add_argument("--speed", type=float, default=400.0, help="events/s per stream")
    demo.add_argument("--out", type=Path, default=Path("adaptd-demo-output"))
    demo.add_argument("--limit", type=int, help="at most this many events per stream")
    demo.add_argument("--no-progress", action="store_true", help="plain log lines instead")

    bench = sub.add_parser("bench", help="ingest and adaptation benchmark")
    bench.add_argument("--out", type=Path, default=Path("docs/bench/ingest.json"))
    bench.add_argument("--events", type=int, default=200_000)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "config" and args.config_command == "docs":
            from adaptd.daemon.config_docs import render

            print(render(), end="")
            return 0
        if args.command == "config":
            settings = load_settings(args.config)
            print(json.dumps(redacted(settings), indent=2))
            return 0
        if args.command == "run":
            return _run(load_settings(args.config), args.max_events, args.idle_timeout)
        if args.command == "feed":
            return _feed(load_settings(args.config), args)
        if args.command == "policies":
            from adaptd.daemon.client import tail

            settings = load_settings(args.config)
            return asyncio.run(tail(settings.kafka, follow=args.follow, as_json=args.json))
        if args.command == "demo":
            from adaptd.daemon.demo import run_demo

            return run_demo(
                speed=args.speed, out=args.out, limit=args.limit, progress=not args.no_progress
            )
        if args.command == "bench":
            from adaptd.daemon.bench import run_bench

            return run_bench(out=args.out, events=args.events)
    except ConfigError as exc:
        print(f"adaptd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InputError as exc:
        print(f"adaptd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return 1


def _run(settings: Settings, max_events: int | None, idle_timeout: float | None) -> int:
    from adaptd.daemon.logs import configure, get_logger
    from adaptd.daemon.service import Daemon

    configure(settings.log_level, settings.log_format)

    async def main_async() -> None:
        daemon = Daemon(settings)
        install_signal_handlers(daemon.stop)
        await daemon.run(max_events=max_events, idle_timeout_s=idle_timeout)

    try:
        asyncio.run(main_async())
    except Exception as exc:
        # Start-up against an unreachable Kafka or Redis ends here, among others: say what
        # failed, with the traceback in the log, and exit non-zero for the supervisor.
        reason = f"{type(exc).__name__}: {exc}"
        get_logger().error("adaptd failed", error=reason, exc_info=True)
        print(f"adaptd: {reason}", file=sys.stderr)
        return 1
    return 0


def install_signal_handlers(stop: object) -> None:
    """First SIGTERM/SIGINT: graceful stop. A second one: exit at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def handle(signum: int) -> None:
        if received:
            os._exit(128 + signum)
        received.append(signum)
        stop()  # type: ignore[operator]

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


class InputError(Exception):
    """A command's input (a CSV file, say) cannot be used; the message says why."""


def _feed(settings: Settings, args: argparse.Namespace) -> int:
    from adaptd.daemon import datasets
    from adaptd.daemon.clients import kafka_common
    from adaptd.daemon.embedded import create_topics
    from adaptd.daemon.feed import produce_series

    if args.csv is not None:
        if not args.stream:
            raise ConfigError("--stream is required with --csv")
        try:
            series = [
                datasets.series_from_csv(
                    args.csv,
                    stream=args.stream,
                    time_col=args.time_col,
                    price_col=args.price_col,
                    volume_col=args.volume_col,
                    bid_col=args.bid_col,
                    ask_col=args.ask_col,
                    time_format=args.time_format,
                )
            ]
        except (OSError, ValueError) as exc:
            raise InputError(str(exc)) from exc
    else:
        names = datasets.DATASETS if args.dataset == "all" else (args.dataset,)
        series = [datasets.load(n) for n in names]
    topic = args.topic or settings.kafka.input_topic

    async def go() -> dict[str, int]:
        await create_topics(settings.kafka.bootstrap_servers, [topic])
        connection = kafka_common(settings.kafka)
        connection.pop("bootstrap_servers")
        return await produce_series(
            settings.kafka.bootstrap_servers,
            topic,
            series,
            rate=args.rate,
            limit=args.limit,
            producer_config=connection,
        )

    sent = asyncio.run(go())
    for stream, count in sent.items():
        print(f"{stream}: {count} events -> {topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
