"""Averaged gradient episodic memory (A-GEM; Chaudhry et al., 2019): GEM with one constraint,
on the average loss of a sample of the whole memory.

At each step A-GEM draws ``sample_size`` examples from the episodic memory of past tasks and
computes their gradient ``g_ref``. If the batch gradient ``g`` conflicts with it
(``<g, g_ref> < 0``), ``g`` is replaced by its projection onto the half-space
``<z, g_ref> >= 0``::

    z = g - (<g, g_ref> / <g_ref, g_ref>) g_ref

so the step never raises the memory sample's loss to first order. One extra gradient a step,
whatever the number of tasks. The memory is an
:class:`~adaptd.adapters.continual.memory.EpisodicMemory` of ``capacity`` examples filled after
each task, by default with an equal share per task ("quota").

Examples
--------
>>> import torch
>>> agem_projection(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 2.0]))
tensor([1., 0.])
>>> agem_projection(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0]))  # no conflict
tensor([1., 1.])

References
----------
Chaudhry, A., Ranzato, M., Rohrbach, M. & Elhoseiny, M. (2019). Efficient lifelong learning
with A-GEM. ICLR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import positive_int
from ..fast_weights import Params
from .gem import flatten, memory_gradient, unflatten
from .memory import EpisodicMemory, Inserter, QuotaInserter, ReservoirInserter
from .protocol import ContinualModel, ContinualTask
from .rehearsal import MemoryRehearsal

__all__ = ["AGEM", "agem_projection"]


def agem_projection(g: Tensor, reference: Tensor) -> Tensor:
    """``g`` projected onto ``<z, reference> >= 0`` when it conflicts, else ``g``."""
    if g.shape != reference.shape:
        raise ValueError(f"g and reference must have one shape, got {g.shape}, {reference.shape}")
    dot = torch.dot(g, reference)
    norm = torch.dot(reference, reference)
    if not dot < 0 or not norm > 0:
        return g
    return g - (dot / norm) * reference


class AGEM(MemoryRehearsal):
    """Averaged gradient episodic memory.

    Parameters
    ----------
    capacity
        Most examples held in the memory (over all tasks).
    sample_size
        Memory examples behind each reference gradient.
    inserter
        Where offered examples go (default :class:`QuotaInserter`, an equal share per task;
        :class:`ReservoirInserter` uniform over every example offered).
    seed
        Seed of the memory's generator.
    """

    name: ClassVar[str] = "agem"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"inserter": ReservoirInserter(), "sample_size": 8},
    )

    def __init__(
        self,
        capacity: int = 1000,
        *,
        sample_size: int = 256,
        inserter: Inserter | None = None,
        seed: int = 0,
    ) -> None:
        self.sample_size = positive_int("sample_size", sample_size)
        self.inserter: Inserter = QuotaInserter() if inserter is None else inserter
        self.capacity = capacity
        self.seed = seed
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self.memory = EpisodicMemory(self.capacity, inserter=self.inserter, seed=self.seed)
        self.projections = 0
        """Steps whose gradient was projected (a diagnostic, not saved)."""

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Offer the task's training set to the memory."""
        self._learned(task)
        self.memory.add(task.train_x, task.train_y, task.id)

    def adjust_gradients(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        grads: Params,
        task: ContinualTask,
    ) -> Params:
        """``grads`` projected off the memory sample's gradient when they conflict."""
        if len(self.memory) == 0:
            return grads
        batch = self.memory.sample(self.sample_size)
        reference = memory_gradient(
            model, params, list(grads), batch.x, batch.y, batch.task, self._classes
        )
        g = flatten(grads)
        z = agem_projection(g, reference)
        if z is g:
            return grads
        self.projections += 1
        return unflatten(z, grads)
