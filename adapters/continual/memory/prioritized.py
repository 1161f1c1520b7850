"""Prioritized sampling with importance-sampling weights (Schaul et al., 2016).

Item ``i`` is drawn with probability ``P(i) = p_i^alpha / sum_j p_j^alpha`` (with
replacement) and weighted by ``w_i = (N P(i))^-beta / max_j (N P(j))^-beta`` over the ``N``
held items, so that the weighted loss is an unbiased estimate of the uniform one at
``beta = 1``. New items get the largest priority given so far (the store's rule), so each is
likely to be replayed once; the caller sets ``p_i = |l_i| + eps`` from the losses it measured
(``EpisodicMemory.update_priorities``).

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import EpisodicMemory
>>> sampler = PrioritizedSampler(alpha=1.0, beta=1.0)
>>> sampler.probabilities(torch.tensor([1.0, 3.0])).tolist()
[0.25, 0.75]
>>> memory = EpisodicMemory(4, sampler=sampler, seed=0)
>>> memory.add(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), task=0)
>>> memory.update_priorities(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))
>>> batch = memory.sample(4)
>>> [round(w, 3) for w in batch.weight.tolist()] == [1.0 if i == 0 else 0.333 for i in batch.index]
True

References
----------
Schaul, T., Quan, J., Antonoglou, I. & Silver, D. (2016). Prioritized experience replay. ICLR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ...checks import in_unit_interval, non_negative
from .protocol import Draw, MemoryView

__all__ = ["PrioritizedSampler"]


@dataclass(frozen=True)
class PrioritizedSampler:
    """Draws by priority to the ``alpha``, with importance weights to the ``beta``.

    Parameters
    ----------
    alpha
        Prioritization exponent (0: uniform).
    beta
        Importance-sampling exponent (1: full correction). Fixed, not annealed.
    """

    alpha: float = 0.6
    beta: float = 0.4
    uses_priorities: ClassVar[bool] = True

    def __post_init__(self) -> None:
        # frozen: the checked values are set through object.__setattr__
        object.__setattr__(self, "alpha", non_negative("alpha", self.alpha))
        object.__setattr__(self, "beta", in_unit_interval("beta", self.beta))

    def probabilities(self, priority: Tensor) -> Tensor:
        """``P(i)`` of every item with priorities ``priority``."""
        scaled = priority.to(torch.float64).pow(self.alpha)
        return scaled / scaled.sum()

    def sample(self, memory: MemoryView, n: int, generator: torch.Generator) -> Draw:
        """``n`` items with replacement, each with its importance-sampling weight."""
        probs = self.probabilities(memory.priority)
        index = torch.multinomial(probs, n, replacement=True, generator=generator)
        # (N P(i))^-beta / max_j (N P(j))^-beta = (min_j P(j) / P(i))^beta
        return Draw(index, (probs.min() / probs[index]).pow(self.beta).to(torch.float32))
