"""Items that carry their own identity, for the episodic memory's tests."""

from __future__ import annotations

import torch

from adaptd.adapters.continual.memory import EpisodicMemory


def offer(memory: EpisodicMemory, values: torch.Tensor, task: int = 0) -> None:
    """Offer ``values`` as items whose input is their own value (to identify them later)."""
    memory.add(values.reshape(-1, 1), torch.zeros(len(values), dtype=torch.int64), task)


def held_values(memory: EpisodicMemory) -> list[int]:
    assert memory.x is not None
    return memory.x.reshape(-1).long().tolist()
