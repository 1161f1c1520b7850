"""What online EWC, MAS and SI share: one per-parameter importance, one anchor (the weights
after the latest task) and the penalty ``scale * sum_k importance_k (theta_k - anchor_k)^2``.

Subclasses say how a task's importance is measured and folded in (:meth:`AnchoredPenalty.fold`
with a decay), what the penalty's ``scale`` is, and under which key the importance is saved.

Examples
--------
>>> import torch
>>> class Unit(AnchoredPenalty):
...     name = "unit"
...     scale = 1.0
>>> strategy = Unit()
>>> strategy.fold({"w": torch.ones(2)}, {"w": torch.zeros(2)}, decay=1.0)
>>> float(strategy.penalty_at({"w": torch.tensor([1.0, 2.0])}))
5.0
>>> sorted(strategy.state_dict())
['anchor', 'importance', 'name', 'tasks_seen']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from ..fast_weights import Params
from .importance import check_pair, check_shapes, copy_params, quadratic_penalty
from .protocol import ContinualModel, ContinualTask, Strategy, tensor_bytes

__all__ = ["AnchoredPenalty"]


class AnchoredPenalty(Strategy):
    """Base of the strategies with a single importance and anchor (not a strategy itself)."""

    name: ClassVar[str] = ""
    regularizer: ClassVar[bool] = True
    importance_key: ClassVar[str] = "importance"
    """Key of the importance in the state dict ("fisher" for online EWC, "omega" for MAS
    and SI)."""

    @property
    def scale(self) -> float:
        """The penalty's factor (``lam / 2`` for EWC, ``lam`` for MAS, ``c`` for SI)."""
        raise NotImplementedError

    def _reset(self) -> None:
        self._importance: Params | None = None
        self._anchor: Params | None = None
        self.tasks_seen = 0
        """Tasks (or batches of episodes) folded in so far."""

    @property
    def anchor(self) -> Params | None:
        """The weights after the latest task (None before the first)."""
        return None if self._anchor is None else dict(self._anchor)

    @property
    def importance(self) -> Params | None:
        """The per-parameter importance (online EWC's Fisher, the Omega of MAS and SI), summed
        or decayed over the tasks so far (None before the first task ends)."""
        return None if self._importance is None else dict(self._importance)

    def _check(self, params: Mapping[str, Tensor]) -> None:
        if self._importance is not None:
            check_shapes(self._importance, params)

    def fold(self, new: Params, params: Mapping[str, Tensor], *, decay: float) -> None:
        """``importance <- decay * importance + new`` (a parameter new since the last task
        starts from zero), anchor at ``params``, one more task seen."""
        if self._importance is not None:
            old = self._importance
            new = {k: decay * old[k] + v if k in old else v for k, v in new.items()}
        self._importance = new
        self._anchor = copy_params(params)
        self.tasks_seen += 1

    def penalty_at(self, params: Mapping[str, Tensor]) -> Tensor | None:
        """``scale * sum_k importance_k (params_k - anchor_k)^2``, differentiable in ``params``;
        None before the first task. ValueError when a protected parameter is missing from
        ``params`` or changed shape."""
        if self._importance is None or self._anchor is None:
            return None
        check_shapes(self._importance, params)
        return self.scale * quadratic_penalty(params, self._anchor, self._importance)

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """The hook: :meth:`penalty_at` ``params`` (a function of the weights alone, whatever
        the batch and task)."""
        return self.penalty_at(params)

    def memory_bytes(self) -> int:
        """Bytes of the importance and the anchor."""
        return tensor_bytes(self._importance) + tensor_bytes(self._anchor)

    def state_dict(self) -> dict[str, Any]:
        """The importance, the anchor (copies; None before any task) and ``tasks_seen``."""
        return {
            "name": self.name,
            self.importance_key: copy_params(self._importance),
            "anchor": copy_params(self._anchor),
            "tasks_seen": self.tasks_seen,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's or its
        importance and anchor do not match."""
        super().load_state_dict(state)
        key = self.importance_key
        importance, anchor = state.get(key), state.get("anchor")
        if (importance is None) != (anchor is None):
            article = "an" if key[0] in "aeiou" else "a"
            raise ValueError(f"state holds {article} {key} without an anchor or the reverse")
        if importance is not None:
            check_pair(importance, anchor, f"{key} and anchor")
        self._importance = copy_params(importance)
        self._anchor = copy_params(anchor)
        self.tasks_seen = int(state.get("tasks_seen", 0))
