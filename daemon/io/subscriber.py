"""Subscribe to adapted policies: keep the latest verified version per model and predict.

For a downstream user; needs aiokafka and numpy, not torch:

    keys = Keyring.from_pem([Path("adaptd-signing.pub").read_bytes()])
    async with PolicySubscriber("kafka:9092", keyring=keys) as sub:
        await sub.wait_for("BTC-USD")
        policy = sub.book.latest("BTC-USD")
        policy.predict({"ret_z": 0.3, ...})

The subscriber reads the policy topic from the beginning without a consumer group (so
every subscriber sees every model), verifies each record's signature against the keys it
trusts (:mod:`adaptd.daemon.core.signing`) and each message's sha256, and keeps the newest
version per model: unsigned, untrusted and altered records are refused and counted in
``refused``; stale, duplicate and corrupt messages are counted and skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
from typing import Any, Self

from aiokafka import AIOKafkaConsumer

from ..config.settings import KafkaSettings
from ..core.policy import PolicyBook, PolicyError, PolicyMessage, decode_message
from ..core.signing import Keyring, SignatureError
from .clients import kafka_common


class PolicySubscriber:
    """Follows the policy topic in the background and keeps a PolicyBook up to date."""

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        topic: str = "adaptd.policies",
        *,
        kafka: KafkaSettings | None = None,
        keyring: Keyring | None = None,
        verify: bool = True,
    ) -> None:
        if (bootstrap_servers is None) == (kafka is None):
            raise ValueError("give either bootstrap_servers or kafka settings")
        if verify and not keyring:
            raise ValueError(
                "verifying policies needs the public keys you trust (keyring=Keyring.from_pem"
                "(...)); verify=False accepts unsigned and unverified policies"
            )
        self.keyring = keyring if verify else None
        self.refused: collections.Counter[str] = collections.Counter()
        """Records refused, by reason: unsigned, unknown_key, bad_signature."""
        self.kafka = kafka or KafkaSettings(bootstrap_servers=str(bootstrap_servers))
        self.topic = topic if kafka is None else kafka.policy_topic
        self.book = PolicyBook()
        self.received = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        opts = kafka_common(self.kafka) | {"client_id": f"{self.kafka.client_id}-subscriber"}
        self._consumer = AIOKafkaConsumer(
            self.topic,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **opts,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._follow())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _follow(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            self.received += 1
            if self.keyring is not None:
                try:
                    self.keyring.verify(record.value or b"", record.headers)
                except SignatureError as exc:
                    self.refused[exc.reason] += 1
                    continue
            with contextlib.suppress(PolicyError):
                message = decode_message(record.value or b"")
                if self.book.offer(message):
                    async with self._changed:
                        self._changed.notify_all()

    async def wait_for(self, model_id: str, min_version: int = 1, timeout_s: float = 30.0) -> None:
        """Wait until the book holds model_id at min_version or newer."""

        def ready() -> bool:
            policy = self.book.latest(model_id)
            return policy is not None and policy.version >= min_version

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout_s)


def describe(message: PolicyMessage) -> dict[str, Any]:
    """A readable summary of a policy message (no weights)."""
    m = message.metrics
    return {
        "model_id": message.model_id,
        "version": message.version,
        "parent_version": message.parent_version,
        "created": dt.datetime.fromtimestamp(message.created_ms / 1000, dt.UTC).isoformat(),
        "shift": message.shift.id if message.shift else None,
        "triggers": list(message.shift.triggers) if message.shift else [],
        "query_loss_before": m.get("query_loss_before"),
        "query_loss_after": m.get("query_loss_after"),
        "adaptation_ms": round(message.latency_s.get("adaptation", float("nan")) * 1000, 2),
        "sha256": message.sha256[:16],
        "algorithm": message.algorithm.get("meta_algorithm"),
    }


async def tail(
    kafka: KafkaSettings,
    *,
    follow: bool = False,
    as_json: bool = False,
    keyring: Keyring | None = None,
) -> int:
    """Print every policy on the topic; with follow, keep printing new ones. With a
    ``keyring``, a record it does not verify is printed as refused, never as a policy."""
    consumer = AIOKafkaConsumer(
        kafka.policy_topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_common(kafka),
    )
    await consumer.start()
    book = PolicyBook()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch and not follow:
                return 0
            for records in batch.values():
                for record in records:
                    try:
                        if keyring is not None:
                            keyring.verify(record.value or b"", record.headers)
                        message = decode_message(record.value or b"")
                        fresh = book.offer(message)
                    except SignatureError as exc:
                        print(f"! offset {record.offset}: refused, {exc}", flush=True)
                        continue
                    except PolicyError as exc:
                        print(f"! offset {record.offset}: {exc}", flush=True)
                        continue
                    info = describe(message) | {"latest": fresh, "offset": record.offset}
                    if as_json:
                        print(json.dumps(info), flush=True)
                    else:
                        print(
                            f"{info['created']}  {info['model_id']} v{info['version']} "
                            f"(parent v{info['parent_version']})  shift {info['shift']}  "
                            f"query loss {info['query_loss_before']:.4f} -> "
                            f"{info['query_loss_after']:.4f}  {info['adaptation_ms']} ms  "
                            f"sha256 {info['sha256']}…{'' if fresh else '  [stale]'}",
                            flush=True,
                        )
    finally:
        await consumer.stop()
