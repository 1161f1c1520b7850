"""Memory aware synapses (Aljundi et al., 2018): importance from how sensitive the learned
function's output is to each parameter, measured without labels.

After a task, for every parameter ``k``

    Omega_k += mean_x | d ||f(x)||_2^2 / d theta_k |

over (at most ``max_examples`` of) the task's inputs, with per-example gradients (``vmap``) so
that the absolute value is taken per example, as the paper defines it. Importances of
successive tasks are added up (the paper accumulates them), the anchor moves to the trained
weights, and later tasks add ``lam * sum_k Omega_k (theta_k - anchor_k)^2`` to their loss.

``f(x)`` is the network's raw output: the logits of a classifier (restricted to the task's
classes in the task-incremental setting, by keeping only those columns) or the prediction of a
regressor. Labels are never used, so the importance can be estimated on unlabelled data,
for instance a regime's most recent features.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
>>> task = ContinualTask(0, x, torch.zeros(16, dtype=torch.long), x, torch.zeros(16))
>>> mas = MemoryAwareSynapses(lam=1.0)
>>> mas.after_task(model, task)
>>> float(mas.penalty(model, model.params, x, task.train_y, task))
0.0
>>> moved = {k: v + 0.1 for k, v in model.params.items()}
>>> bool(mas.penalty(model, moved, x, task.train_y, task) > 0)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.func import grad, vmap

from ..checks import integer, non_negative, positive_int
from ..fast_weights import Params
from .anchored import AnchoredPenalty
from .importance import check_per_example, subsample
from .protocol import ContinualModel, ContinualTask
from .seeds import derive_seed

__all__ = ["MemoryAwareSynapses", "output_sensitivity"]


def output_sensitivity(
    model: ContinualModel,
    params: Mapping[str, Tensor],
    x: Tensor,
    *,
    classes: Sequence[int] | None = None,
    chunk: int = 256,
) -> Params:
    """``mean_x |d ||f(x)||^2 / d theta|`` per parameter (detached, shaped like it).

    Parameters
    ----------
    classes
        Keep only these output columns of a classifier (task-incremental tasks).
    chunk
        Examples per vectorised batch (bounds memory).
    """
    check_per_example(model, x, "the output sensitivity")
    inputs = {k: v.detach() for k, v in params.items()}
    columns = None if classes is None else torch.tensor(list(classes), dtype=torch.long)

    def squared_norm(p: Params, xi: Tensor) -> Tensor:
        out = model.output(p, xi.unsqueeze(0))
        if columns is not None:
            out = out.index_select(-1, columns)
        return out.pow(2).sum()

    per_example = vmap(grad(squared_norm), in_dims=(None, 0))
    total = {k: torch.zeros_like(v) for k, v in inputs.items()}
    for lo in range(0, len(x), chunk):
        for k, g in per_example(inputs, x[lo : lo + chunk]).items():
            total[k] += g.abs().sum(0)
    return {k: v / len(x) for k, v in total.items()}


class MemoryAwareSynapses(AnchoredPenalty):
    """MAS: accumulated output-sensitivity importance and a quadratic penalty toward the latest
    task's weights.

    Parameters
    ----------
    lam
        Strength of the penalty ``lam * sum_k Omega_k (theta_k - anchor_k)^2`` (the paper
        uses 1).
    max_examples
        At most this many inputs of a task (a seeded random subset) estimate its importance.
    seed
        Seed of that subset (combined with the task id).

    Examples
    --------
    >>> MemoryAwareSynapses().importance is None
    True

    References
    ----------
    Aljundi, R., Babiloni, F., Elhoseiny, M., Rohrbach, M. & Tuytelaars, T. (2018). Memory
    aware synapses: learning what (not) to forget. ECCV.
    """

    name: ClassVar[str] = "mas"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = ({}, {"lam": 5.0})
    importance_key: ClassVar[str] = "omega"

    def __init__(self, lam: float = 1.0, max_examples: int = 512, seed: int = 0) -> None:
        self.lam = non_negative("lam", lam)
        self.max_examples = positive_int("max_examples", max_examples)
        self.seed = integer("seed", seed)
        super().__init__()

    @property
    def scale(self) -> float:
        """``lam``."""
        return self.lam

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Add the importance of ``task``'s inputs at ``model.params``; anchor there."""
        self._check(model.params)
        x, _ = subsample(
            task.train_x, task.train_x, self.max_examples, derive_seed(self.seed, task.id)
        )
        new = output_sensitivity(model, model.params, x, classes=task.classes)
        self.fold(new, model.params, decay=1.0)
