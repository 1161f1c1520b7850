"""Retention measured live: how well the current initialisation still serves every regime the
daemon has met, from held-out episodes it never trained on.

After each meta round, every held-out episode (``adaptd.replay.holdout``) is evaluated the way
a regime is served: the learner adapts the current initialisation on the episode's support
part and the query loss is taken on its query part (``episode_task``). An episode's
*reference loss* is its first evaluation, stored in Redis with it. Per (stream, regime):

    retention = sum of its episodes' reference losses / sum of their current losses

over the episodes evaluated now that have a reference. 1 means as good as when the regime's
episodes were first evaluated, above 1 better (meta-training has since learned more of it),
below 1 forgotten: 0.8 means the loss is 25 % above its reference. The daemon exports the mean
and the minimum over regimes and how many regimes were evaluated (no per-regime labels), and
logs a warning naming the stream, the regime and the ratio when a regime falls below
``continual.retention_floor``. A ratio from two episodes' query sets is noisy from round to
round, so a fall is logged once and ends (an info line) only when the ratio is back above
halfway between the floor and 1 (0.9 for a floor of 0.8).

:func:`assess` is the pure part; :class:`RetentionMonitor` runs it against Redis and the
learner.

>>> from adaptd.replay.holdout import HeldRegime
>>> class Ep(NamedTuple):
...     id: str
>>> held = [HeldRegime("s:0", "s", 0, (Ep("a"), Ep("b")), {"a": 1.0, "b": 1.0}),
...         HeldRegime("s:1", "s", 1, (Ep("c"),), {})]
>>> report = assess(held, {"a": 1.5, "b": 1.0, "c": 0.7})
>>> [(r.key, r.ratio) for r in report.regimes], report.new_references
([('s:0', 0.8), ('s:1', 1.0)], {'s:1': {'c': 0.7}})
>>> report.mean, report.minimum
(0.9, 0.8)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..io.logs import get_logger
from ..io.metrics import Metrics
from .worker import BACKGROUND, TorchWorker

if TYPE_CHECKING:
    from adaptd.replay.holdout import HeldRegime, HoldoutStore

    from ..learner.messages import Learner

__all__ = ["EVALUATION_CHUNK", "RegimeRetention", "RetentionMonitor", "RetentionReport", "assess"]

log = get_logger("adaptd.retention")

EVALUATION_CHUNK = 32
"""Held-out episodes per learner job: an adaptation waits for at most one such job."""
_TINY = 1e-12


class RegimeRetention(NamedTuple):
    """The retention of one (stream, regime)."""

    key: str
    stream: str
    regime: int
    ratio: float
    """Reference losses over current losses, summed over the regime's evaluated episodes."""
    episodes: int
    """Held-out episodes that entered the ratio."""


class RetentionReport(NamedTuple):
    """One evaluation of every held-out regime."""

    regimes: tuple[RegimeRetention, ...]
    """The regimes with at least one evaluated episode."""
    new_references: dict[str, dict[str, float]]
    """Regime key -> episode id -> loss, for episodes evaluated for the first time."""

    @property
    def mean(self) -> float:
        """Mean retention over regimes (NaN when none was evaluated)."""
        if not self.regimes:
            return math.nan
        return sum(r.ratio for r in self.regimes) / len(self.regimes)

    @property
    def minimum(self) -> float:
        """Worst retention over regimes (NaN when none was evaluated)."""
        return min((r.ratio for r in self.regimes), default=math.nan)


def assess(held: Sequence[HeldRegime], losses: Mapping[str, float]) -> RetentionReport:
    """Retention of each held regime from the current ``losses`` (episode id -> loss; a
    missing or non-finite loss leaves that episode out). An episode without a reference
    takes its current loss as one (retention 1 for it) and is listed in ``new_references``."""
    regimes, new = [], {}
    for regime in held:
        reference, current = 0.0, 0.0
        count = 0
        for episode in regime.episodes:
            loss = losses.get(episode.id, math.nan)
            if not math.isfinite(loss):
                continue
            ref = regime.reference.get(episode.id)
            if ref is None:
                ref = loss
                new.setdefault(regime.key, {})[episode.id] = loss
            reference += ref
            current += loss
            count += 1
        if count:
            ratio = 1.0 if reference == current else reference / max(current, _TINY)
            regimes.append(RegimeRetention(regime.key, regime.stream, regime.regime, ratio, count))
    return RetentionReport(tuple(regimes), new)


class RetentionMonitor:
    """Evaluates the held-out episodes on the learner, keeps their reference losses, exports
    the retention gauges and warns when a regime falls below ``floor``."""

    def __init__(
        self,
        holdout: HoldoutStore,
        learner: Learner,
        worker: TorchWorker,
        metrics: Metrics,
        floor: float,
        task: str = "return",
        export: bool = True,
    ) -> None:
        self.task = task
        self.export = export
        """Whether this monitor sets the retention gauges (the first task's does)."""
        self.holdout = holdout
        self.learner = learner
        self.worker = worker
        self.metrics = metrics
        self.floor = floor
        self.recovered = (1.0 + floor) / 2
        """A regime below the floor counts as recovered from this ratio on (hysteresis)."""
        self.below: set[str] = set()
        """Regime keys currently below the floor (so each fall is logged once)."""
        self.last: RetentionReport | None = None

    async def evaluate(self) -> RetentionReport:
        """One evaluation of every held-out episode at the current initialisation."""
        held = await self.holdout.held()
        episodes = [e for regime in held for e in regime.episodes]
        losses: dict[str, float] = {}
        for lo in range(0, len(episodes), EVALUATION_CHUNK):
            chunk = episodes[lo : lo + EVALUATION_CHUNK]
            values = await self.worker.submit(
                self.learner.evaluate, self.task, chunk, priority=BACKGROUND
            )
            losses.update((e.id, v) for e, v in zip(chunk, values, strict=True))
        report = assess(held, losses)
        if report.new_references:
            await self.holdout.set_references(report.new_references)
        self._export(report)
        self.last = report
        return report

    def _export(self, report: RetentionReport) -> None:
        m = self.metrics
        if self.export:
            m.retention_regimes.set(len(report.regimes))
            if report.regimes:
                m.retention_ratio.labels(stat="mean").set(report.mean)
                m.retention_ratio.labels(stat="min").set(report.minimum)
            else:
                m.retention_ratio.clear()
        for r in report.regimes:
            if r.ratio < self.floor and r.key not in self.below:
                self.below.add(r.key)
                log.warning(
                    "regime retention below the floor",
                    task=self.task,
                    stream=r.stream,
                    regime=r.regime,
                    ratio=round(r.ratio, 4),
                    floor=self.floor,
                )
            elif r.ratio >= self.recovered and r.key in self.below:
                self.below.discard(r.key)
                log.info(
                    "regime retention back above the floor",
                    task=self.task,
                    stream=r.stream,
                    regime=r.regime,
                    ratio=round(r.ratio, 4),
                )
        self.below &= {r.key for r in report.regimes}
