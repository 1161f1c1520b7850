"""Uniform sampling: distinct items, every subset of the batch's size equally likely.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import EpisodicMemory
>>> memory = EpisodicMemory(8, sampler=UniformSampler(), seed=0)
>>> memory.add(torch.arange(8.0).reshape(8, 1), torch.zeros(8, dtype=torch.long), task=0)
>>> batch = memory.sample(3)
>>> len(set(batch.index.tolist())), batch.weight.tolist()
(3, [1.0, 1.0, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .protocol import Draw, MemoryView

__all__ = ["UniformSampler"]


@dataclass(frozen=True)
class UniformSampler:
    """Distinct items drawn uniformly (fewer than ``n`` when fewer are held)."""

    uses_priorities: ClassVar[bool] = False

    def sample(self, memory: MemoryView, n: int, generator: torch.Generator) -> Draw:
        """The first ``n`` of a random permutation of the held items."""
        return Draw(torch.randperm(len(memory.task), generator=generator)[:n], None)
