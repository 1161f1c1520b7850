"""Online elastic weight consolidation: one running diagonal Fisher and one anchor, for an
unbounded sequence of tasks in constant memory.

After each task the Fisher information of the task's data at the trained weights is folded into
a running estimate, ``F <- decay * F + F_task``, and the anchor moves to the trained weights.
Training on a later task adds ``lam / 2 * sum_k F_k (theta_k - anchor_k)^2`` to its loss. This
is the consolidation step of Progress & Compress (Schwarz et al., 2018), equivalent to EWC++
(Chaudhry et al., 2018) up to how the decay is parametrised; unlike per-task EWC its memory
does not grow with the number of tasks (two copies of the weights).

The daemon consolidates from episodes rather than from a ``ContinualTask``:
:meth:`OnlineEWC.consolidate` takes raw tensors and does what ``after_task`` does.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> g = torch.Generator().manual_seed(0)
>>> x, y = torch.randn(32, 3, generator=g), torch.randint(0, 2, (32,), generator=g)
>>> task = ContinualTask(0, x, y, x, y)
>>> ewc = OnlineEWC(lam=10.0, decay=0.5)
>>> ewc.penalty(model, model.params, x, y, task) is None
True
>>> ewc.consolidate(model, x, y)  # what after_task(model, task) does
>>> ewc.tasks_seen, float(ewc.penalty(model, model.params, x, y, task))
(1, 0.0)
>>> moved = {k: v + 0.1 for k, v in model.params.items()}
>>> bool(ewc.penalty(model, moved, x, y, task) > 0)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor

from ..checks import in_unit_interval, integer, non_negative, one_of, positive_int
from ..fast_weights import Params
from .anchored import AnchoredPenalty
from .importance import (
    FISHER_KINDS,
    FisherKind,
    fisher_diagonal,
    subsample,
)
from .protocol import ContinualModel, ContinualTask
from .seeds import derive_seed

__all__ = ["OnlineEWC"]


class OnlineEWC(AnchoredPenalty):
    """Online EWC: a decayed running Fisher and the latest task's weights as the anchor.

    Parameters
    ----------
    lam
        Strength of the penalty (``lambda``; the penalty is ``lam / 2`` times the weighted
        squared distance).
    decay
        Factor ``gamma`` in ``[0, 1]`` applied to the running Fisher before a new task's is
        added: 1 keeps every task's importance at full weight, 0 protects only the latest task.
    fisher
        "empirical" (observed labels) or "true" (the model's own predictive distribution),
        see :func:`~adaptd.adapters.continual.importance.fisher_diagonal`. Stored as
        ``fisher_kind``: the property ``fisher`` is the running Fisher itself.
    max_examples
        At most this many examples of a task (a seeded random subset) estimate its Fisher.
    seed
        Seed of that subset (combined with the number of tasks consolidated so far).

    Examples
    --------
    >>> ewc = OnlineEWC(decay=0.9)
    >>> ewc.fisher is None, ewc.anchor is None, ewc.tasks_seen
    (True, True, 0)

    References
    ----------
    Schwarz, J., Luketina, J., Czarnecki, W. M., et al. (2018). Progress & Compress: a scalable
    framework for continual learning. ICML.

    Chaudhry, A., Dokania, P. K., Ajanthan, T. & Torr, P. H. S. (2018). Riemannian walk for
    incremental learning: understanding forgetting and intransigence. ECCV.
    """

    name: ClassVar[str] = "online_ewc"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"fisher": "true", "decay": 0.5},
    )
    importance_key: ClassVar[str] = "fisher"

    def __init__(
        self,
        lam: float = 100.0,
        decay: float = 0.9,
        fisher: FisherKind = "empirical",
        max_examples: int = 512,
        seed: int = 0,
    ) -> None:
        self.lam = non_negative("lam", lam)
        self.decay = in_unit_interval("decay", decay)
        self.fisher_kind: FisherKind = one_of("fisher", fisher, FISHER_KINDS)
        self.max_examples = positive_int("max_examples", max_examples)
        self.seed = integer("seed", seed)
        super().__init__()

    @property
    def scale(self) -> float:
        """``lam / 2``."""
        return self.lam / 2

    @property
    def fisher(self) -> Params | None:
        """The running diagonal Fisher, one tensor per parameter (None before any task): the
        ``importance``."""
        return self.importance

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Fold ``task``'s Fisher (its training data, its classes) at ``model.params`` in."""
        self.consolidate(model, task.train_x, task.train_y, task.classes)

    def consolidate(
        self,
        model: ContinualModel,
        x: Tensor,
        y: Tensor,
        classes: Sequence[int] | None = None,
    ) -> None:
        """Fold the Fisher of ``(x, y)`` at ``model.params`` into the running one and anchor
        at ``model.params``; ``classes`` restricts a classifier's outputs."""
        self._check(model.params)
        x, y = subsample(x, y, self.max_examples, derive_seed(self.seed, self.tasks_seen))
        new = fisher_diagonal(model, model.params, x, y, kind=self.fisher_kind, classes=classes)
        self.fold(new, model.params, decay=self.decay)
