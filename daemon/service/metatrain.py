"""Continuous meta-training of one policy task's initialisation from its replay reservoir.

Every ``meta_interval_s`` seconds, once the reservoir holds ``meta_min_items`` episodes,
``meta_steps`` meta-updates each sample ``meta_batch`` episodes (``replay.sample_strategy``),
run on the torch worker at background priority (adaptations go first). A round that made
updates then consolidates the penalty (``continual.fisher_episodes`` episodes sampled by
regime, their Fisher at the new initialisation), checkpoints the learner's state and the
penalty's to Redis so a restart resumes from them, and re-evaluates the held-out episodes for
the retention metrics.

The trainer owns the task's meta-learned initialisation as the daemon serves it: ``init``, the
numpy copy that scores a stream's examples before it has a policy of its own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adaptd.adapters.serving import NumpyPolicy
from adaptd.replay.episode import Episode
from adaptd.replay.samplers import RegimeSampler, Sampler

from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..learner.messages import ACTIVATION, CHECKPOINT_MAGIC, Learner, MetaRound
from .retention import RetentionMonitor
from .worker import BACKGROUND, TorchWorker

log = get_logger("adaptd.metatrain")

__all__ = ["MetaSchedule", "MetaTrainer"]


class Reservoir(Protocol):
    """What meta-training reads of the replay reservoir (``adaptd.replay.ReservoirBuffer``)."""

    async def stats(self) -> Any: ...

    async def sample(self, n: int, *, sampler: Sampler, rng: random.Random) -> list[Episode]: ...


class Checkpoints(Protocol):
    """Where the checkpoint lives (``adaptd.daemon.io.checkpoints.CheckpointStore``)."""

    async def save(self, state: bytes, info: dict[str, Any]) -> None: ...

    async def load(self) -> tuple[bytes, dict[str, Any]] | None: ...


@dataclass(frozen=True)
class MetaSchedule:
    """How and how often a task is meta-trained (the ``adaptation``, ``replay`` and
    ``continual`` settings)."""

    interval_s: float
    min_items: int
    steps: int
    batch: int
    sampler: Sampler
    """How meta-batches are drawn (``replay.sample_strategy``)."""
    algorithm: str
    penalty: str
    fisher_episodes: int
    seed: int
    export: bool = True
    """Whether this task's round sets the replay and meta-loss gauges (the first task's)."""


class MetaTrainer:
    """Owns one task's meta-training loop, its checkpoint and its served initialisation."""

    def __init__(
        self,
        task: str,
        architecture: dict[str, Any],
        schedule: MetaSchedule,
        learner: Learner,
        worker: TorchWorker,
        reservoir: Reservoir,
        checkpoints: Checkpoints,
        metrics: Metrics,
        retention: RetentionMonitor | None = None,
        read_pickled: bool = False,
    ) -> None:
        self.task = task
        self.architecture = architecture
        self.schedule = schedule
        self.learner = learner
        self.worker = worker
        self.reservoir = reservoir
        self.checkpoints = checkpoints
        self.read_pickled = read_pickled
        """Hand the learner a checkpoint pickled by an earlier version (``torch.load``)."""
        self.metrics = metrics
        self.retention = retention
        self.rng = random.Random(schedule.seed)
        self.last: MetaRound | None = None
        self.meta_updates = 0
        self.init: NumpyPolicy | None = None
        """The initialisation the streams are scored with until they have a policy."""

    async def restore(self) -> bool:
        """Load the checkpoint if it fits the configured network; True if it did. Serves the
        initialisation either way."""
        restored = False
        stored = await self.checkpoints.load()
        if stored is not None:
            state, info = stored
            if not state.startswith(CHECKPOINT_MAGIC) and not self.read_pickled:
                log.warning(
                    "checkpoint is an earlier version's pickle: not read, meta-training starts "
                    "afresh (state.read_pickled_snapshots reads it once)",
                    task=self.task,
                )
            elif (
                info.get("architecture") == self.architecture
                and info.get("meta_algorithm") == self.schedule.algorithm
            ):
                await self._run(self.learner.load_bytes, self.task, state)
                restored = True
            else:
                log.warning(
                    "checkpoint does not fit the configured network; starting fresh",
                    task=self.task,
                    stored=info.get("architecture"),
                    configured=self.architecture,
                )
        self.meta_updates = await self._run(self.learner.meta_updates, self.task)
        if restored:
            log.info(
                "meta-learned initialisation restored",
                task=self.task,
                meta_updates=self.meta_updates,
            )
        self._serve(await self._run(self.learner.init_numpy, self.task))
        return restored

    def _serve(self, params: dict[str, Any]) -> None:
        skip = int(self.architecture.get("skip", 0))
        self.init = NumpyPolicy.from_params(params, activation=ACTIVATION, skip=skip)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await self.worker.submit(fn, *args, priority=BACKGROUND)

    async def run(self) -> None:
        """Meta-train every ``interval_s`` until cancelled; a failed round is counted and
        logged, never the end of meta-training."""
        while True:
            await asyncio.sleep(self.schedule.interval_s)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.meta_errors.inc()
                log.warning("meta-training round failed", task=self.task, error=repr(exc))

    async def round(self) -> int:
        """One round: refresh replay metrics, meta-update, consolidate, checkpoint, measure
        retention. Returns the updates made."""
        s = self.schedule
        stats = await self.reservoir.stats()
        if s.export:
            self.metrics.replay_items.set(stats.size)
            self.metrics.replay_seen.set(stats.seen)
        if stats.size < s.min_items:
            return 0
        done = 0
        for _ in range(s.steps):
            episodes = await self.reservoir.sample(s.batch, sampler=s.sampler, rng=self.rng)
            result = await self._run(self.learner.meta_train, self.task, episodes)
            if result is None:
                continue
            done += 1
            self.last = result
            self.meta_updates = result.meta_updates
            self.metrics.meta_updates.inc()
            if s.export:
                self.metrics.meta_loss.set(result.query_loss_after)
            self._serve(result.init)
        if not done:
            return 0
        await self._checkpoint(await self._consolidate())
        if self.retention is not None:
            await self.retention.evaluate()
        return done

    async def _consolidate(self) -> int:
        s = self.schedule
        if s.penalty == "none":
            return 0
        episodes: Sequence[Episode] = await self.reservoir.sample(
            s.fisher_episodes, sampler=RegimeSampler(), rng=self.rng
        )
        return await self._run(self.learner.consolidate, self.task, episodes)

    async def _checkpoint(self, consolidations: int) -> None:
        state = await self._run(self.learner.state_bytes, self.task)
        await self.checkpoints.save(
            state,
            {
                "architecture": self.architecture,
                "meta_algorithm": self.schedule.algorithm,
                "meta_updates": self.meta_updates,
                "penalty": self.schedule.penalty,
                "consolidations": consolidations,
            },
        )
