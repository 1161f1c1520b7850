"""Policies out: a version drawn, the message sent (signed) and recorded as the model's latest.

A :class:`Publication` keeps what a failed attempt achieved, so a retry never draws a second
version for the same policy nor sends it twice (seen in ``make chaos``: Redis paused after
the send, and the retry published the policy again under a new version).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import ProducerClosed

from ..core.policy import PolicyMessage, encode_message
from ..core.signing import Signer
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.outputs import Undeliverable
from ..io.retry import retrying
from .lineage import PolicyRecords
from .worker import WorkerClosed

log = get_logger("adaptd.publishing")

__all__ = ["FATAL", "PolicySender", "Publication", "Sender"]

FATAL = (ProducerClosed, WorkerClosed)
"""Errors that retrying cannot fix: the daemon is shutting down."""


class Sender(Protocol):
    """Sends records and returns once all are acknowledged (``adaptd.daemon.io.outputs``)."""

    async def send_all(self, records: list[tuple[str, bytes | None, bytes, Any]]) -> None: ...


@dataclass
class Publication:
    """One policy on its way out: its message once a version is drawn, and whether the
    brokers acknowledged it."""

    model_id: str
    message_of: Callable[[int], PolicyMessage]
    message: PolicyMessage | None = None
    sent: bool = False


class PolicySender:
    """Publishes policies on the policy topic and records them as their models' latest."""

    def __init__(
        self,
        outputs: Sender,
        policies: PolicyRecords,
        policy_topic: str,
        metrics: Metrics,
        signer: Signer | None = None,
    ) -> None:
        self.outputs = outputs
        self.policies = policies
        self.policy_topic = policy_topic
        self.metrics = metrics
        self.signer = signer

    async def publish(
        self, publication: Publication, *, what: str, stream: str, task: str
    ) -> int | None:
        """``publication`` sent, retried until it is out and recorded (its version), or None
        when the brokers refuse the policy for good: counted, logged, and not retried (the
        stream keeps what it serves)."""
        try:
            return await retrying(
                lambda: self._send(publication),
                what=what,
                on_error=lambda _: self.metrics.publish_errors.inc(),
                fatal=(*FATAL, Undeliverable),
            )
        except Undeliverable as exc:
            self.metrics.outputs_dropped.labels(
                topic=exc.topic, error=type(exc.error).__name__
            ).inc()
            log.error(
                "policy dropped: the brokers refused it for good",
                what=what,
                stream=stream,
                task=task,
                bytes=exc.size,
                error=repr(exc.error),
            )
            return None

    async def _send(self, publication: Publication) -> int:
        """Draw the model's next version (once), send its message (acknowledged; once) and
        record it as the model's latest; returns the version. A retry after a failure goes
        on from where the failed attempt stopped: it never draws a second version for the
        same policy, nor sends it twice."""
        message = publication.message
        if message is None:
            version = await self.policies.next_version(publication.model_id)
            message = publication.message = publication.message_of(version)
        if not publication.sent:
            value = encode_message(message)
            headers = None if self.signer is None else self.signer.headers(value)
            await self.outputs.send_all(
                [(self.policy_topic, publication.model_id.encode(), value, headers)]
            )
            publication.sent = True
        await self.policies.save_latest(message)
        return message.version
