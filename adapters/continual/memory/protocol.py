"""What the episodic memory's strategies see and return: a read-only view of the store, the
placement an :class:`Inserter` decides, the draw a :class:`Sampler` makes.

The store (:class:`~adaptd.adapters.continual.memory.store.EpisodicMemory`) owns the items and
the seeded generator; it asks its inserter where offered items go and its sampler which items
a batch holds, and applies the answer. The strategies hold no state of their own (the counters
and priorities they read are the store's), so one strategy object may serve many memories::

    placement = inserter.place(memory, count, task, generator)   # drop, append, overwrite
    draw = sampler.sample(memory, n, generator)                  # slots, importance weights
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["Draw", "Inserter", "MemoryView", "Placement", "Sampler"]


class MemoryView(Protocol):
    """What a strategy may read of the store."""

    @property
    def capacity(self) -> int:
        """Most items held."""
        ...

    @property
    def task(self) -> Tensor:
        """Task id of each held item, by slot (int64)."""
        ...

    @property
    def priority(self) -> Tensor:
        """Priority of each held item, by slot."""
        ...

    @property
    def seen(self) -> int:
        """Items ever offered."""
        ...

    @property
    def task_counts(self) -> Mapping[int, int]:
        """Items ever offered per task id, in first-seen order."""
        ...


class Placement(NamedTuple):
    """Where the ``count`` items of one offer go, applied in this order."""

    keep: Tensor | None
    """Which held items stay (a boolean mask by slot); None keeps them all."""
    append: Tensor
    """Offered items (indices into the offer) appended after the kept ones, in order."""
    slots: Tensor
    """Slots, in the store after ``keep`` and ``append``, that are overwritten..."""
    items: Tensor
    """...by these offered items (indices into the offer), one a slot."""


class Draw(NamedTuple):
    """The items of one sampled batch."""

    index: Tensor
    """Slots of the drawn items (int64)."""
    weight: Tensor | None
    """Importance-sampling weight of each drawn item; None when all are 1."""


@runtime_checkable
class Inserter(Protocol):
    """An insertion policy: which held items make room for an offer, and where it goes."""

    name: ClassVar[str]
    """Saved with the store's state, which only loads into a store with the same policy."""

    def place(
        self, memory: MemoryView, count: int, task: int, generator: torch.Generator
    ) -> Placement:
        """The placement of ``count`` items of task ``task`` offered to ``memory`` (before
        its counters include them); random choices come from ``generator``."""
        ...


@runtime_checkable
class Sampler(Protocol):
    """A sampling policy: which held items a batch of ``n`` holds."""

    uses_priorities: ClassVar[bool]
    """True when draws depend on the items' priorities, so a caller should keep them up to
    date (``EpisodicMemory.update_priorities``)."""

    def sample(self, memory: MemoryView, n: int, generator: torch.Generator) -> Draw:
        """A batch of at most ``n`` items of a non-empty ``memory`` (``n >= 1``)."""
        ...
