"""What processing a batch of input asks the outside world to do.

The pure core (stream and partition state) never talks to Kafka or Redis: it appends
effects here, and the service stores them (dead letters and shifts to Kafka, episodes to
the reservoir, adaptation requests to the torch worker) before it commits the offsets
that caused them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from adaptd.replay.episode import Episode

from .regimes import RegimeMatch
from .schema import Reason
from .shift import Shift
from .validation import Retirement


class DeadLetter(NamedTuple):
    """A rejected input record, with where it came from and why."""

    reason: Reason
    detail: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


class ShiftEvent(NamedTuple):
    """A confirmed regime shift on one stream."""

    id: str
    """``{stream}@{topic}:{partition}:{offset}``: unique per shift, stable on redelivery."""
    stream: str
    shift: Shift
    segment: int
    """The new segment's number on this stream (1 after the first shift). Its regime id is
    known only once its examples arrive: see ``AdaptationRequest.regime``."""
    topic: str
    partition: int
    offset: int
    ts_ms: int
    wall_time: float
    """time.time() at confirmation, for shift-to-publish latency."""


@dataclass
class AdaptationRequest:
    """Fresh labelled examples of a new regime, to adapt one task's policy from.

    The latest ``query_x``/``query_y`` rows are held out: the adapted policy is published
    only if its loss there beats the stream's current policy for the task.
    """

    id: str
    """The shift's id, with ``#{task}`` for a qualified task: unique per shift and task."""
    stream: str
    shift: ShiftEvent
    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    parent_version: int
    parent_weights: dict[str, np.ndarray] | None
    """The stream's current policy (None: it has none yet, the meta-init serves it)."""
    first_offset: int
    last_offset: int
    ready_wall_time: float
    """time.time() when the last needed example matured."""
    regime: RegimeMatch | None = None
    """The regime the examples were classified into."""
    start_weights: dict[str, np.ndarray] | None = None
    """Where adaptation starts: the last policy of a known, returning regime (None: the
    meta-learned initialisation)."""
    task: str = "return"
    """The policy task (requests from before tasks existed are the return task's)."""
    model_id: str = ""
    """The model the policy is published as (empty in requests from before tasks existed:
    the stream id)."""

    @property
    def model(self) -> str:
        """The model id (the stream id for a request from before tasks existed)."""
        return self.model_id or self.stream


class Published(NamedTuple):
    """A policy published for an adaptation request, to make live."""

    version: int
    weights: dict[str, np.ndarray]


class Retired(NamedTuple):
    """A live policy retired for losing to its task's baseline: the baseline, as a network
    (``weights``), serves in its place and is to be published with the reason."""

    stream: str
    task: str
    model: str
    topic: str
    partition: int
    verdict: Retirement
    reason: str
    weights: dict[str, np.ndarray]


@dataclass
class Effects:
    """Everything one batch produced, in order of the events that caused it."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    shifts: list[ShiftEvent] = field(default_factory=list)
    episodes: list[tuple[str, Episode]] = field(default_factory=list)
    """(task, episode) of every episode completed."""
    requests: list[AdaptationRequest] = field(default_factory=list)
    retirements: list[Retired] = field(default_factory=list)
    """Live policies that lost to their baseline, replaced by it (to publish)."""
    regimes: list[tuple[str, str, RegimeMatch]] = field(default_factory=list)
    """(stream, task, regime) of every adaptation set classified, queued requests included."""
    processed: int = 0
    examples: int = 0
    firings: dict[tuple[str, str], int] = field(default_factory=dict)
    """Raw detector firings per (detector, channel), absorbed ones included."""
    confirmations: dict[str, int] = field(default_factory=dict)
    """Shifts confirmed, relocated or retracted by their confirmation, by outcome."""

    def __len__(self) -> int:
        return (
            len(self.dead_letters)
            + len(self.shifts)
            + len(self.episodes)
            + len(self.requests)
            + len(self.retirements)
        )
