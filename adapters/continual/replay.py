"""Experience replay: rehearse stored examples of earlier tasks alongside each new batch.

The strategy keeps examples in an :class:`~adaptd.adapters.continual.memory.EpisodicMemory`
of fixed capacity, filled after each task with the task's training set ("after_task": the
memory sees every example once) or while training, batch by batch ("stream": reservoir over
the stream, so the current task is rehearsed too, as in Chaudhry et al.'s tiny episodic
memories; with several epochs an example is offered once per epoch). Its ``penalty`` is
``weight`` times the loss of the current weights on a batch drawn from the memory, each
example's loss scaled by its importance-sampling weight (1 unless the sampler weights); with a
sampler that uses priorities (:class:`~adaptd.adapters.continual.memory.PrioritizedSampler`)
the drawn examples' priorities become their new losses (Schaul et al., 2016). The memory's
insertion and sampling policies are objects handed to the constructor
(:mod:`adaptd.adapters.continual.memory`).

In the task-incremental setting a stored example is scored only over its own task's classes
(the classes are kept per task id; :mod:`adaptd.adapters.continual.rehearsal`).

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(20, 3, generator=g)
>>> task = ContinualTask(0, x, (x[:, 0] > 0).long(), x, (x[:, 0] > 0).long())
>>> from adaptd.adapters.continual.memory import PrioritizedSampler
>>> replay = ExperienceReplay(capacity=10, batch_size=4, sampler=PrioritizedSampler(), seed=0)
>>> replay.penalty(model, model.params, x[:4], task.train_y[:4], task) is None  # empty memory
True
>>> replay.after_task(model, task)
>>> len(replay.memory)
10
>>> loss = replay.penalty(model, model.params, x[:4], task.train_y[:4], task)
>>> loss.shape, bool(loss > 0)
(torch.Size([]), True)

References
----------
Ratcliff, R. (1990). Connectionist models of recognition memory. Psychological Review 97(2).
Rolnick, D. et al. (2019). Experience replay for continual learning. NeurIPS.
Chaudhry, A. et al. (2019). On tiny episodic memories in continual learning. arXiv:1902.10486.
Schaul, T., Quan, J., Antonoglou, I. & Silver, D. (2016). Prioritized experience replay. ICLR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from torch import Tensor

from ..checks import non_negative, one_of, positive_int
from .memory import (
    EpisodicMemory,
    Inserter,
    PrioritizedSampler,
    QuotaInserter,
    ReservoirInserter,
    Sampler,
    StratifiedSampler,
    UniformSampler,
)
from .protocol import ContinualModel, ContinualTask
from .rehearsal import MemoryRehearsal, replay_losses

__all__ = ["ExperienceReplay"]

STORES = ("after_task", "stream")


class ExperienceReplay(MemoryRehearsal):
    """Experience replay from a bounded episodic memory.

    Parameters
    ----------
    capacity
        Most examples held (over all tasks).
    batch_size
        Memory examples drawn per training step.
    weight
        Scale of the replay loss relative to the task loss.
    sampler
        How a memory batch is drawn (default :class:`UniformSampler`;
        :class:`PrioritizedSampler` by loss, importance-weighted; :class:`StratifiedSampler`
        an equal share per task id).
    inserter
        Where offered examples go (default :class:`ReservoirInserter`, uniform over every
        example offered; :class:`QuotaInserter` an equal share per task).
    store
        "after_task" (offer the task's training set when it ends) or "stream" (offer each
        training batch as it comes).
    seed
        Seed of the memory's generator.
    """

    name: ClassVar[str] = "replay"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"sampler": PrioritizedSampler()},
        {"sampler": StratifiedSampler(), "inserter": QuotaInserter()},
        {"store": "stream"},
    )

    def __init__(
        self,
        capacity: int = 1000,
        *,
        batch_size: int = 32,
        weight: float = 1.0,
        sampler: Sampler | None = None,
        inserter: Inserter | None = None,
        store: Literal["after_task", "stream"] = "after_task",
        seed: int = 0,
    ) -> None:
        self.batch_size = positive_int("batch_size", batch_size)
        self.weight = non_negative("weight", weight)
        self.sampler: Sampler = UniformSampler() if sampler is None else sampler
        self.inserter: Inserter = ReservoirInserter() if inserter is None else inserter
        self.store = one_of("store", store, STORES)
        self.capacity = capacity
        self.seed = seed
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self.memory = EpisodicMemory(
            self.capacity, inserter=self.inserter, sampler=self.sampler, seed=self.seed
        )

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """``weight`` times the (importance-weighted) mean loss on a memory batch; None while
        the memory is empty. In "stream" mode the batch ``(x, y)`` is offered afterwards."""
        loss = None
        if len(self.memory) > 0:
            batch = self.memory.sample(self.batch_size)
            losses = replay_losses(model, params, batch.x, batch.y, batch.task, self._classes)
            loss = self.weight * (batch.weight * losses).mean()
            if self.sampler.uses_priorities:
                self.memory.update_priorities(batch.index, losses.detach())
        if self.store == "stream":
            self._learned(task)
            self.memory.add(x.detach(), y.detach(), task.id)
        return loss

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Offer the task's training set to the memory ("after_task" mode)."""
        self._learned(task)
        if self.store == "after_task":
            self.memory.add(task.train_x, task.train_y, task.id)
