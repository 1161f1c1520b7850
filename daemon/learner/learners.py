"""The learner of every policy task, behind one object: what the learner process serves (and,
with ``adaptation.isolation=thread``, what the daemon's worker thread calls directly).

Every job names its task; each task has its own network, meta-learned initialisation,
penalty and checkpoint (:class:`~.policy_learner.PolicyLearner`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptd.replay.episode import Episode

from ..config.settings import AdaptationSettings, ContinualSettings
from .messages import AdaptationOutcome, AdaptJob, MetaRound, TaskSpec
from .policy_learner import PolicyLearner

__all__ = ["TaskLearners"]


class TaskLearners:
    """One :class:`PolicyLearner` per policy task; implements the ``Learner`` protocol."""

    def __init__(
        self,
        settings: AdaptationSettings,
        specs: Sequence[TaskSpec],
        continual: ContinualSettings | None = None,
    ) -> None:
        self.learners = {spec.name: PolicyLearner(settings, spec, continual) for spec in specs}

    def _of(self, task: str) -> PolicyLearner:
        try:
            return self.learners[task]
        except KeyError:
            raise KeyError(f"no learner for policy task {task!r}") from None

    def warm_up(self) -> None:
        for learner in self.learners.values():
            learner.warm_up()

    def adapt(self, job: AdaptJob, deadline_s: float) -> AdaptationOutcome:
        return self._of(job.task).adapt(job, deadline_s)

    def meta_train(self, task: str, episodes: Sequence[Episode]) -> MetaRound | None:
        return self._of(task).meta_train(episodes)

    def consolidate(self, task: str, episodes: Sequence[Episode]) -> int:
        return self._of(task).consolidate(episodes)

    def evaluate(self, task: str, episodes: Sequence[Episode]) -> list[float]:
        return self._of(task).evaluate(episodes)

    def init_numpy(self, task: str) -> dict[str, np.ndarray]:
        return self._of(task).init_numpy()

    def meta_updates(self, task: str) -> int:
        return self._of(task).meta_updates()

    def state_bytes(self, task: str) -> bytes:
        return self._of(task).state_bytes()

    def load_bytes(self, task: str, data: bytes) -> None:
        self._of(task).load_bytes(data)
