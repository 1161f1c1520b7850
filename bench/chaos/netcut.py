"""``netcut``: the daemon's network cut, three times: its links to the broker, to Redis, then
to both, each for ``pause_s``. Two :class:`.proxy.CutProxy` stand between the daemon and
the services: the broker advertises the Kafka proxy's port (as tests/tls_support.py puts a
TLS terminator in front of Tansu), so every connection the daemon makes after bootstrapping
goes through it too; the daemon's Redis URL names the Redis proxy. A cut resets the open
connections and refuses new ones; the restore lets them through again.

Unlike a paused server (``broker``, ``redis``: connections open, nothing answers), a cut
closes the connections at once, so the clients see errors rather than silence and must
reconnect: aiokafka finds its coordinator again, redis-py its pool. Only the daemon's Kafka
connections (its client id) are cut; the scenario's feed and readers keep theirs (see
:mod:`.proxy`). Figures per cut: what the proxy reset and refused, and from the restore the
seconds to resumed consumption and to caught up.
"""

from __future__ import annotations

from typing import Any

from adaptd.tools.embedded import free_port

from .invariants import check_commits_stored
from .ledger import Ledger
from .logscan import count_events, retries_by_what
from .proxy import CutProxy, kafka_client_prefix
from .recovery import Watch
from .services import Broker
from .stage import Options, Result, Stage, run_stage
from .steady import Injection, kafka_errors, through_faults, timed_fault

__all__ = ["netcut_scenario"]

DAEMON_CLIENT_ID = "adaptd-chaos"
"""The daemon's Kafka client id (its subscriber's is this plus "-subscriber"): what the
Kafka proxy's cuts select."""
LOGGED = (
    "partitions revoked",
    "partitions assigned",
    "partition restored",
    "partition has no usable snapshot; streams warm up again",
    "offset commit failed",
)


class NetcutStage(Stage):
    """A stage whose daemons reach the broker and Redis through cut proxies."""

    def __init__(self, opts: Options, result: Result) -> None:
        broker_port, proxy_port = free_port(), free_port()
        super().__init__(
            "netcut", opts, result, broker=Broker(port=broker_port, advertised_port=proxy_port)
        )
        self.kafka_proxy = CutProxy(
            broker_port,
            port=proxy_port,
            name="broker",
            identify=kafka_client_prefix(DAEMON_CLIENT_ID),
        )
        self.redis_proxy = CutProxy(self.redis.port, name="redis")
        self.daemon_bootstrap = f"127.0.0.1:{proxy_port}"
        self.daemon_redis_url = f"redis://127.0.0.1:{self.redis_proxy.port}/0"
        self.daemon_settings["ADAPTD_KAFKA__CLIENT_ID"] = DAEMON_CLIENT_ID

    async def open(self) -> None:
        # Listening before the broker starts: its metadata names the proxy from the first
        # request on (the topics are created through it).
        await self.kafka_proxy.start()
        await self.redis_proxy.start()
        await super().open()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.kafka_proxy.close()
            await self.redis_proxy.close()


def _cut(proxies: list[CutProxy], what: str, hold_s: float) -> Injection:
    async def inject(watch: Watch) -> dict[str, Any]:
        dropped: list[int] = []

        async def begin() -> None:
            for proxy in proxies:
                dropped.append(await proxy.cut())

        async def end() -> None:
            for proxy in proxies:
                await proxy.restore()

        print(f"  cut {what} for {hold_s:.0f} s", flush=True)
        fault = await timed_fault(watch, f"{what} cut", begin, end, hold_s)
        fault["connections_reset"] = {p.name: n for p, n in zip(proxies, dropped, strict=True)}
        fault["connections_refused"] = {p.name: p.cuts[-1]["refused"] for p in proxies}
        return fault

    return inject


async def netcut_scenario(opts: Options) -> Result:
    stage = NetcutStage(opts, Result("netcut"))
    ledger = Ledger(stage)
    kafka, redis = stage.kafka_proxy, stage.redis_proxy
    cuts = [
        _cut([kafka], "broker link", opts.pause_s),
        _cut([redis], "redis link", opts.pause_s),
        _cut([kafka, redis], "broker and redis links", opts.pause_s),
    ]

    def figures(watch: Watch, last: dict[str, float]) -> dict[str, Any]:
        return {
            **kafka_errors(last),
            "redis_errors_total": last.get("adaptd_redis_errors_total"),
            "proxied_connections": {p.name: p.accepted for p in (kafka, redis)},
        }

    async def body(stage: Stage) -> None:
        async with ledger:
            await through_faults(stage, cuts, figures)
        r = stage.result
        r.checks.append(check_commits_stored(ledger.pairs()))
        lines = [line for d in stage.daemons for line in d.log_lines()]
        r.figures["logged"] = count_events(lines, LOGGED)
        r.figures["retries"] = retries_by_what(lines)
        r.figures["ledger_samples"] = len(ledger.samples)
        r.figures["ledger_failed_reads"] = ledger.failed_reads
        r.notes.append(
            "Only the daemon's Kafka connections are cut (its client id "
            f"{DAEMON_CLIENT_ID!r}); the feed's and the checks' pass, as a producer on "
            "another host's link would. A cut Redis proxy stops listening (refused by the "
            "kernel, not counted)."
        )

    return await run_stage(stage, body, budget_s=300 + 3 * (opts.pause_s + 60))
