"""The chain of a model's policy versions, kept linear across restarts.

Every published policy names its parent: the version subscribers held before it. The daemon
knows the live version of each (stream, task) from its partition snapshot, but a policy can be
published after the last snapshot and before a crash; restarted from that snapshot, the daemon
would name an older version as the next policy's parent, and a subscriber following
``parent_version`` would see a fork. So the model's latest policy, recorded in Redis at each
publication, is the authority: restored streams adopt it when it is newer (:meth:`recover`),
and the publisher checks it before it publishes (:meth:`latest`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from aiokafka import TopicPartition

from adaptd.adapters.codec import params_from_bytes

from ..core.effects import Published
from ..core.policy import PolicyError, PolicyMessage
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.retry import retrying
from .ownership import Ownership

log = get_logger("adaptd.lineage")

__all__ = ["Lineage", "PolicyRecords", "published_of", "reads_as"]


class PolicyRecords(Protocol):
    """Version counters and the latest policy per model (``adaptd.daemon.io.stores``)."""

    async def next_version(self, model_id: str) -> int: ...

    async def save_latest(self, message: PolicyMessage) -> None: ...

    async def latest(self, model_id: str) -> PolicyMessage | None: ...

    async def latest_many(self, model_ids: list[str]) -> dict[str, PolicyMessage]: ...


class Lineage:
    """Reads the models' latest policies and brings the streams' live policies up to them."""

    def __init__(self, ownership: Ownership, policies: PolicyRecords, metrics: Metrics) -> None:
        self.ownership = ownership
        self.policies = policies
        self.metrics = metrics

    async def latest(self, model_id: str) -> PolicyMessage | None:
        """The model's latest published policy (Redis errors retried)."""
        return await retrying(
            lambda: self.policies.latest(model_id),
            what="read the model's latest policy",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def recover(self, tps: Iterable[TopicPartition]) -> int:
        """Restored streams of ``tps`` adopt their models' latest policies where those are
        newer than what their snapshots serve; returns how many did."""
        models = self.ownership.models(tps)
        if not models:
            return 0
        ids = [model for _, _, _, model, _ in models]
        latest = await retrying(
            lambda: self.policies.latest_many(ids),
            what="read the models' latest policies",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        caught = 0
        for tp, stream, task, model, version in models:
            message = latest.get(model)
            if message is None or message.version <= version:
                continue
            published = published_of(message)
            if published is not None and await self.ownership.catch_up(
                tp, stream, task, published, validate=not message.validation
            ):
                caught += 1
                log.info(
                    "restored stream adopts its model's latest policy",
                    stream=stream,
                    task=task,
                    version=message.version,
                    snapshot_version=version,
                )
        return caught


def reads_as(message: PolicyMessage, names: list[str]) -> bool:
    """Whether a stored policy reads the inputs ``names`` (a model's configured ones). One
    published before the task's inputs changed (its features, the strategy task's
    ``ensemble``) does not, and is no parent of the next policy; a message without names
    (older than feature names) is taken to."""
    held = message.features.get("names")
    return held is None or list(held) == list(names)


def published_of(message: PolicyMessage) -> Published | None:
    """A stored policy's version and weights; None (logged) when its weights fail their
    checksum: it cannot be served, and the chain goes on from what the stream knows."""
    try:
        return Published(message.version, params_from_bytes(message.weight_bytes()))
    except PolicyError as exc:
        log.error("a stored policy fails its checksum", model=message.model_id, error=str(exc))
        return None
