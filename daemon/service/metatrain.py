"""Continuous meta-training of the shared initialisation from the replay reservoir.

Every ``meta_interval_s`` seconds, once the reservoir holds ``meta_min_items`` episodes,
``meta_steps`` meta-updates each sample ``meta_batch`` episodes (uniformly, stratified by
stream, or by (stream, regime): ``replay.sample_strategy``), run on the torch worker at
background priority (adaptations go first). A round that made updates then consolidates
the penalty (``continual.fisher_episodes`` episodes sampled by regime, their Fisher at the new
initialisation), checkpoints the learner's state and the penalty's to Redis so a restart
resumes from them, and re-evaluates the held-out episodes for the retention metrics.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from adaptd.adapters.serving import NumpyPolicy
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.samplers import RegimeSampler, sampler_for

from ..config.settings import Settings
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.stores import CheckpointStore
from ..learner.messages import Learner
from .retention import RetentionMonitor
from .worker import BACKGROUND, TorchWorker

if TYPE_CHECKING:
    from ..learner.messages import MetaRound

log = get_logger("adaptd.metatrain")


class MetaTrainer:
    """Owns the meta-training loop and the checkpoint of its result."""

    def __init__(
        self,
        settings: Settings,
        learner: Learner,
        worker: TorchWorker,
        reservoir: ReservoirBuffer,
        checkpoints: CheckpointStore,
        metrics: Metrics,
        on_init: Callable[[NumpyPolicy], None],
        retention: RetentionMonitor | None = None,
    ) -> None:
        self.settings = settings
        self.learner = learner
        self.worker = worker
        self.reservoir = reservoir
        self.checkpoints = checkpoints
        self.metrics = metrics
        self.on_init = on_init
        self.retention = retention
        self.rng = random.Random(settings.adaptation.seed)
        self.last: MetaRound | None = None

    async def restore(self) -> bool:
        """Load the checkpoint if it fits the configured network; True if it did."""
        stored = await self.checkpoints.load()
        if stored is not None:
            state, info = stored
            if (
                info.get("architecture") == self.learner.architecture
                and info.get("meta_algorithm") == self.settings.adaptation.meta_algorithm
            ):
                await self.worker.submit(self.learner.load_bytes, state, priority=BACKGROUND)
                log.info(
                    "meta-learned initialisation restored", meta_updates=self.learner.meta_updates
                )
                self._publish_init(await self.worker.submit(self.learner.init_numpy))
                return True
            log.warning(
                "checkpoint does not fit the configured network; starting fresh",
                stored=info.get("architecture"),
                configured=self.learner.architecture,
            )
        self._publish_init(await self.worker.submit(self.learner.init_numpy))
        return False

    def _publish_init(self, params: dict[str, np.ndarray]) -> None:
        self.on_init(
            NumpyPolicy.from_params(params, activation=self.learner.architecture["activation"])
        )

    async def run(self) -> None:
        interval = self.settings.adaptation.meta_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed round must not end meta-training
                self.metrics.meta_errors.inc()
                log.warning("meta-training round failed", error=repr(exc))

    async def round(self) -> int:
        """One round: refresh replay metrics, meta-update, consolidate, checkpoint, measure
        retention. Returns the updates made."""
        a = self.settings.adaptation
        stats = await self.reservoir.stats()
        self.metrics.replay_items.set(stats.size)
        self.metrics.replay_seen.set(stats.seen)
        if stats.size < a.meta_min_items:
            return 0
        done = 0
        sampler = sampler_for(self.settings.replay.sample_strategy)
        for _ in range(a.meta_steps):
            episodes = await self.reservoir.sample(a.meta_batch, sampler=sampler, rng=self.rng)
            result = await self.worker.submit(
                self.learner.meta_train, episodes, priority=BACKGROUND
            )
            if result is None:
                continue
            done += 1
            self.last = result
            self.metrics.meta_updates.inc()
            self.metrics.meta_loss.set(result.query_loss_after)
            self._publish_init(result.init)
        if not done:
            return 0
        c = self.settings.continual
        consolidations = 0
        if c.penalty != "none":
            episodes = await self.reservoir.sample(
                c.fisher_episodes, sampler=RegimeSampler(), rng=self.rng
            )
            consolidations = await self.worker.submit(
                self.learner.consolidate, episodes, priority=BACKGROUND
            )
        state = await self.worker.submit(self.learner.state_bytes, priority=BACKGROUND)
        await self.checkpoints.save(
            state,
            {
                "architecture": self.learner.architecture,
                "meta_algorithm": a.meta_algorithm,
                "meta_updates": self.learner.meta_updates,
                "penalty": c.penalty,
                "consolidations": consolidations,
            },
        )
        if self.retention is not None:
            await self.retention.evaluate()
        return done
