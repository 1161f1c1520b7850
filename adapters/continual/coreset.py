"""Core-set replay: keep, per task and class, the examples a selection rule ranks first.

Two selection rules, each returning indices in the order chosen:

* :func:`herding` (Welling, 2009; iCaRL's exemplar selection, Rebuffi et al., 2017): greedily
  add the example that brings the mean of those chosen closest to the mean of all, so every
  prefix of the order is itself a good summary of the class;
* :func:`k_center` (greedy farthest point, Gonzalez, 1985; Sener & Savarese, 2018): start
  from a random example, then add the one farthest from everything chosen; the covering radius
  of the first ``k`` is at most twice the best possible with ``k`` centres.

:class:`CoresetReplay` selects after each task, in the network's last hidden layer
(L2-normalised, as iCaRL; ``space="input"`` uses the raw inputs), separately for each class of
a classification task. The capacity is split evenly over the tasks seen and, within a task,
over its classes (water-filling: a group too small for its share passes the rest on); when a
new task arrives the older tasks shrink by dropping their last-selected examples, which is why
the selection order matters. Its ``penalty`` is ``weight`` times the loss on a uniformly drawn
batch of the core set, scored over each example's task classes.

Examples
--------
>>> import torch
>>> points = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
>>> herding(points, 3).tolist()  # mean 3.25; after 2 and 1, it takes 10 (not 0) to get back up
[2, 1, 3]
>>> k_center(points, 2, seed=0).tolist()
[0, 3]
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
>>> y = (x[:, 0] > 0).long()
>>> coreset = CoresetReplay(capacity=10, seed=0)
>>> for t in range(2):
...     coreset.after_task(model, ContinualTask(t, x, y, x, y))
>>> coreset.counts()
{0: 5, 1: 5}

References
----------
Welling, M. (2009). Herding dynamical weights to learn. ICML.
Rebuffi, S.-A., Kolesnikov, A., Sperl, G. & Lampert, C. H. (2017). iCaRL: incremental
classifier and representation learning. CVPR.
Gonzalez, T. F. (1985). Clustering to minimize the maximum intercluster distance. TCS 38.
Sener, O. & Savarese, S. (2018). Active learning for convolutional neural networks: a core-set
approach. ICLR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..checks import int_in_range, non_negative, one_of, positive_int
from ..network import PolicyNet, features
from .memory import fair_shares
from .protocol import ContinualModel, ContinualTask
from .rehearsal import SeededRehearsal, replay_losses

__all__ = ["CoresetReplay", "herding", "k_center"]

Selection = Literal["herding", "k_center"]
SELECTIONS: tuple[Selection, ...] = ("herding", "k_center")
SPACES = ("features", "input")


def _check(points: Tensor, k: int) -> None:
    if points.ndim != 2:
        raise ValueError(f"features must be 2-d (n, d), got shape {tuple(points.shape)}")
    int_in_range("k", k, 0, len(points))


def herding(points: Tensor, k: int) -> Tensor:
    """Indices of ``k`` distinct rows of ``points`` ``(n, d)``, in the order herding picks them:
    row ``i`` is the one minimising ``||mean - (sum of those before + row) / i||``."""
    _check(points, k)
    f = points.detach().to(torch.float64)
    mean = f.mean(0)
    total = torch.zeros_like(mean)
    taken = torch.zeros(len(f), dtype=torch.bool)
    chosen: list[int] = []
    for i in range(1, k + 1):
        gap = (mean - (total + f) / i).pow(2).sum(1).masked_fill(taken, float("inf"))
        j = int(torch.argmin(gap))
        chosen.append(j)
        taken[j] = True
        total = total + f[j]
    return torch.tensor(chosen, dtype=torch.int64)


def k_center(points: Tensor, k: int, seed: int = 0) -> Tensor:
    """Indices of ``k`` rows of ``points`` ``(n, d)`` chosen by greedy farthest-point
    traversal from a random (seeded) first row, in the order chosen."""
    _check(points, k)
    if k == 0:
        return torch.zeros(0, dtype=torch.int64)
    f = points.detach().to(torch.float64)
    generator = torch.Generator().manual_seed(int(seed))
    j = int(torch.randint(len(f), (1,), generator=generator))
    chosen = [j]
    distance = (f - f[j]).norm(dim=1)
    for _ in range(k - 1):
        j = int(torch.argmax(distance))
        chosen.append(j)
        distance = torch.minimum(distance, (f - f[j]).norm(dim=1))
    return torch.tensor(chosen, dtype=torch.int64)


class CoresetReplay(SeededRehearsal):
    """Replay from per-task, per-class core sets chosen by herding or k-center.

    Parameters
    ----------
    capacity
        Most examples held (over all tasks).
    selection
        "herding" or "k_center".
    space
        Where examples are compared: "features" (the last hidden layer of a
        :class:`~adaptd.adapters.network.PolicyNet` after the task, L2-normalised; the inputs
        for other networks) or "input".
    batch_size
        Core-set examples drawn per training step.
    weight
        Scale of the replay loss relative to the task loss.
    seed
        Seed of k-center's first picks and of the replay batches.
    """

    name: ClassVar[str] = "coreset"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {"selection": "herding"},
        {"selection": "k_center"},
        {"selection": "herding", "space": "input"},
    )

    def __init__(
        self,
        capacity: int = 1000,
        *,
        selection: Selection = "herding",
        space: Literal["features", "input"] = "features",
        batch_size: int = 32,
        weight: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.capacity = positive_int("capacity", capacity)
        self.selection: Selection = one_of("selection", selection, SELECTIONS)
        self.space = one_of("space", space, SPACES)
        self.batch_size = positive_int("batch_size", batch_size)
        self.weight = non_negative("weight", weight)
        self.seed = seed
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._x: Tensor | None = None
        self._y: Tensor | None = None
        self._task = torch.zeros(0, dtype=torch.int64)
        self._group = torch.zeros(0, dtype=torch.int64)  # class within the task (0: regression)
        self._rank = torch.zeros(0, dtype=torch.int64)  # selection order within the group

    def counts(self) -> dict[int, int]:
        """Examples held per task id, in the order the tasks came."""
        ids, sizes = torch.unique(self._task, return_counts=True)
        held = dict(zip(ids.tolist(), sizes.tolist(), strict=True))
        return {t: held.get(t, 0) for t in self._classes}

    def _features(self, model: ContinualModel, x: Tensor) -> Tensor:
        if self.space == "input" or not isinstance(model.net, PolicyNet):
            return x.reshape(len(x), -1)
        with torch.no_grad():
            h = features(model.net, model.params, x)
        return torch.nn.functional.normalize(h, dim=1)

    def _select(self, points: Tensor, k: int) -> Tensor:
        if self.selection == "herding":
            return herding(points, k)
        seed = int(torch.randint(2**31 - 1, (1,), generator=self._generator))
        return k_center(points, k, seed)

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Select the task's core set, then shrink the older tasks' to their new shares."""
        if self._x is not None:
            self._keep(self._task != task.id)  # a task seen again is selected afresh
        self._learned(task)
        held = self.counts()
        held[task.id] = len(task.train_y)
        shares = dict(zip(held, fair_shares(self.capacity, list(held.values())), strict=True))
        if model.loss == "cross_entropy":
            groups = task.train_y.long()
        else:
            groups = torch.zeros(len(task.train_y), dtype=torch.int64)
        ids, sizes = torch.unique(groups, return_counts=True)
        points = self._features(model, task.train_x)
        xs, ys, group, rank = [], [], [], []
        for g, k in zip(ids.tolist(), fair_shares(shares[task.id], sizes.tolist()), strict=True):
            members = torch.nonzero(groups == g).squeeze(1)
            picked = members[self._select(points[members], k)]
            xs.append(task.train_x[picked])
            ys.append(task.train_y[picked])
            group.append(torch.full((k,), g, dtype=torch.int64))
            rank.append(torch.arange(k))
        new_x, new_y = torch.cat(xs), torch.cat(ys)
        if self._x is None:
            self._x, self._y = new_x[:0], new_y[:0]
        self._x = torch.cat((self._x, new_x))
        self._y = torch.cat((self._y, new_y))
        self._task = torch.cat((self._task, torch.full((len(new_y),), task.id)))
        self._group = torch.cat((self._group, *group))
        self._rank = torch.cat((self._rank, *rank))
        self._shrink({t: k for t, k in shares.items() if held[t] > k and t != task.id})

    def _shrink(self, shares: Mapping[int, int]) -> None:
        """Cut each task in ``shares`` down to its share, by class, keeping the lowest ranks."""
        keep = torch.ones(len(self._task), dtype=torch.bool)
        for t, share in shares.items():
            mine = self._task == t
            ids, sizes = torch.unique(self._group[mine], return_counts=True)
            for g, k in zip(ids.tolist(), fair_shares(share, sizes.tolist()), strict=True):
                keep &= ~(mine & (self._group == g) & (self._rank >= k))
        self._keep(keep)

    def _keep(self, keep: Tensor) -> None:
        self._x, self._y = self._x[keep], self._y[keep]
        self._task, self._group, self._rank = self._task[keep], self._group[keep], self._rank[keep]

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """``weight`` times the mean loss on a uniform batch of the core set; None while it is
        empty."""
        if len(self._task) == 0:
            return None
        index = torch.randperm(len(self._task), generator=self._generator)[: self.batch_size]
        losses = replay_losses(
            model, params, self._x[index], self._y[index], self._task[index], self._classes
        )
        return self.weight * losses.mean()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "x": None if self._x is None else self._x.clone(),
            "y": None if self._y is None else self._y.clone(),
            "task": self._task.clone(),
            "group": self._group.clone(),
            "rank": self._rank.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._x = None if state["x"] is None else state["x"].clone()
        self._y = None if state["y"] is None else state["y"].clone()
        self._task = state["task"].clone()
        self._group = state["group"].clone()
        self._rank = state["rank"].clone()
