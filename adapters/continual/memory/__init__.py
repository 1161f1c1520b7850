"""The episodic memory the replay strategies share: a bounded store of examples
(:class:`EpisodicMemory`) with its insertion and sampling policies injected, each a small
class behind a protocol (:mod:`.protocol`).

- Insertion (:class:`Inserter`): :class:`ReservoirInserter` (Algorithm R over the whole
  stream: every item offered is held with probability ``capacity / seen``) and
  :class:`QuotaInserter` (an equal share of the capacity per task, Algorithm R within it).
- Sampling (:class:`Sampler`): :class:`UniformSampler` (distinct items),
  :class:`PrioritizedSampler` (by priority to the ``alpha``, with importance-sampling weights)
  and :class:`StratifiedSampler` (an equal share of the batch per task).

A new policy is one file with one class that has the protocol's method; the store needs no
change.

>>> import torch
>>> memory = EpisodicMemory(6, inserter=QuotaInserter(), sampler=PrioritizedSampler(), seed=0)
>>> memory.add(torch.zeros(9, 1), torch.zeros(9, dtype=torch.long), task=0)
>>> len(memory), len(memory.sample(4).index)
(6, 4)
"""

from .prioritized import PrioritizedSampler
from .protocol import Draw, Inserter, MemoryView, Placement, Sampler
from .quota import QuotaInserter
from .reservoir import ReservoirInserter
from .shares import fair_shares
from .store import EpisodicMemory, MemoryBatch
from .stratified import StratifiedSampler
from .uniform import UniformSampler

__all__ = [
    "Draw",
    "EpisodicMemory",
    "Inserter",
    "MemoryBatch",
    "MemoryView",
    "Placement",
    "PrioritizedSampler",
    "QuotaInserter",
    "ReservoirInserter",
    "Sampler",
    "StratifiedSampler",
    "UniformSampler",
    "fair_shares",
]
