"""Elastic weight consolidation with per-task protection (Kirkpatrick et al., 2017).

After each task ``t`` the diagonal Fisher information ``F_t`` of its training data at the
trained weights ``theta*_t`` is stored with those weights; training on a later task adds

    lam / 2 * sum_t sum_k F_t,k (theta_k - theta*_t,k)^2

to its loss, one quadratic per finished task, so each task is pulled back toward its own
weights. Memory grows linearly with the number of tasks (two copies of the weights per task)
unless ``max_tasks`` keeps only the most recent ones;
:class:`~adaptd.adapters.continual.online_ewc.OnlineEWC` is the constant-memory variant. The
penalty's cost does not grow: a sum of diagonal quadratics is one diagonal quadratic,

    sum_t F_t (theta - theta*_t)^2 = S (theta - mu)^2 + C,
    S = sum_t F_t,  mu = sum_t F_t theta*_t / S,  C = sum_t F_t (theta*_t - mu)^2,

so the strategy keeps ``S``, ``mu`` and ``C`` up to date when a task is added or dropped and
evaluates one quadratic per step.

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
>>> ewc = EWC(lam=10.0, max_tasks=2)
>>> ewc.after_task(model, task)
>>> ewc.tasks, float(ewc.penalty(model, model.params, x, y, task))
([0], 0.0)
>>> moved = {k: v + 0.1 for k, v in model.params.items()}
>>> bool(ewc.penalty(model, moved, x, y, task) > 0)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import integer, non_negative, one_of, positive_int
from ..fast_weights import Params
from .importance import (
    FISHER_KINDS,
    FisherKind,
    check_pair,
    check_shapes,
    copy_params,
    fisher_diagonal,
    quadratic_penalty,
    subsample,
)
from .protocol import ContinualModel, ContinualTask, Strategy, tensor_bytes
from .seeds import derive_seed

__all__ = ["EWC"]


class EWC(Strategy):
    """EWC: one (Fisher, anchor) pair per finished task, each a quadratic penalty.

    Parameters
    ----------
    lam
        Strength of the penalty (``lambda``; each task's term is ``lam / 2`` times its
        weighted squared distance).
    fisher
        "empirical" (observed labels) or "true" (the model's own predictive distribution),
        see :func:`~adaptd.adapters.continual.importance.fisher_diagonal`.
    max_examples
        At most this many examples of a task (a seeded random subset) estimate its Fisher.
    seed
        Seed of that subset (combined with the task id).
    max_tasks
        Keep the penalties of only this many most recent tasks, which bounds memory; ``None``
        keeps every task, so memory grows linearly with the sequence.

    Examples
    --------
    >>> EWC(max_tasks=3).importance is None
    True

    References
    ----------
    Kirkpatrick, J., Pascanu, R., Rabinowitz, N., et al. (2017). Overcoming catastrophic
    forgetting in neural networks. PNAS 114(13), 3521-3526.
    """

    name: ClassVar[str] = "ewc"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"fisher": "true", "max_tasks": 1},
    )
    regularizer: ClassVar[bool] = True

    def __init__(
        self,
        lam: float = 100.0,
        fisher: FisherKind = "empirical",
        max_examples: int = 512,
        seed: int = 0,
        max_tasks: int | None = None,
    ) -> None:
        self.lam = non_negative("lam", lam)
        self.fisher: FisherKind = one_of("fisher", fisher, FISHER_KINDS)
        self.max_examples = positive_int("max_examples", max_examples)
        self.seed = integer("seed", seed)
        self.max_tasks = positive_int("max_tasks", max_tasks, optional=True)
        super().__init__()

    def _reset(self) -> None:
        self._penalties: list[dict[str, Any]] = []
        """Per protected task, oldest first: ``{"task": id, "fisher": F, "anchor": theta*}``."""
        self._combined: tuple[Params, Params, Tensor] | None = None
        """``(S, mu, C)`` of the module docstring, for the protected tasks."""

    def _combine(self) -> None:
        if not self._penalties:
            self._combined = None
            return
        total: Params = {}
        weighted: Params = {}
        for stored in self._penalties:  # a later task may cover parameters an earlier did not
            for k, f in stored["fisher"].items():
                fa = f * stored["anchor"][k]
                total[k] = total[k] + f if k in total else f.clone()
                weighted[k] = weighted[k] + fa if k in weighted else fa
        latest = self._penalties[-1]["anchor"]
        if len(self._penalties) == 1:  # exactly the task's own quadratic, zero at its anchor
            self._combined = (total, dict(latest), torch.zeros(()))
            return
        # Where no task gives a parameter any importance its centre is irrelevant (S = 0).
        center = {
            k: torch.where(s > 0, weighted[k] / s.clamp_min(1e-30), latest[k])
            for k, s in total.items()
        }
        offset = torch.stack(
            [quadratic_penalty(center, p["anchor"], p["fisher"]) for p in self._penalties]
        ).sum()
        self._combined = (total, center, offset)

    @property
    def tasks(self) -> list[int]:
        """Ids of the tasks currently protected, oldest first."""
        return [int(p["task"]) for p in self._penalties]

    @property
    def importance(self) -> Params | None:
        """Per-parameter importance: the sum of the protected tasks' Fishers (None before any
        task)."""
        if self._combined is None:
            return None
        return {k: v.clone() for k, v in self._combined[0].items()}

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Store ``task``'s Fisher (its training data, its classes) and ``model.params``."""
        for stored in self._penalties:
            check_shapes(stored["fisher"], model.params)
        x, y = subsample(
            task.train_x, task.train_y, self.max_examples, derive_seed(self.seed, task.id)
        )
        fisher = fisher_diagonal(model, model.params, x, y, kind=self.fisher, classes=task.classes)
        anchor = copy_params(model.params)
        self._penalties.append({"task": task.id, "fisher": fisher, "anchor": anchor})
        if self.max_tasks is not None:
            del self._penalties[: -self.max_tasks]
        self._combine()

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """``lam / 2 * sum_t sum_k F_t,k (params_k - anchor_t,k)^2``, evaluated as one
        quadratic (module docstring); None before any task."""
        if self._combined is None:
            return None
        total, center, offset = self._combined
        check_shapes(total, params)
        return self.lam / 2 * (quadratic_penalty(params, center, total) + offset)

    def memory_bytes(self) -> int:
        """Bytes of the stored Fishers and anchors and of their combined quadratic."""
        return tensor_bytes(self._penalties) + tensor_bytes(self._combined)

    def state_dict(self) -> dict[str, Any]:
        """Every protected task's id, Fisher and anchor (copies), oldest first."""
        return {
            "name": self.name,
            "penalties": [
                {
                    "task": p["task"],
                    "fisher": copy_params(p["fisher"]),
                    "anchor": copy_params(p["anchor"]),
                }
                for p in self._penalties
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's."""
        super().load_state_dict(state)
        penalties = []
        for stored in state.get("penalties", []):
            fisher, anchor = stored["fisher"], stored["anchor"]
            check_pair(fisher, anchor, f"fisher and anchor of task {stored['task']}")
            penalties.append(
                {
                    "task": int(stored["task"]),
                    "fisher": copy_params(fisher),
                    "anchor": copy_params(anchor),
                }
            )
        self._penalties = penalties
        self._combine()
