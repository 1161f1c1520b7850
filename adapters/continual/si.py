"""Synaptic intelligence (Zenke, Poole & Ganguli, 2017): importance from each parameter's share
of the loss decrease along the training trajectory.

During a task every step adds ``-g_k * (new_k - old_k)`` to a running path integral ``w_k``
(how much the step on parameter ``k`` lowered the task loss, to first order). At the end of the
task, with ``delta_k`` the parameter's total change over the task,

    Omega_k <- max(0, Omega_k + w_k / (delta_k^2 + xi))

and the anchor moves to the trained weights; later tasks add ``c * sum_k Omega_k (theta_k -
anchor_k)^2`` to their loss. Importance accumulates over tasks (a sum, as the paper does).

Which gradient: ``g`` is the gradient of the task loss alone, as in the authors' code (which
differentiates the unregularised loss a second time). The step's gradients reach
:meth:`SynapticIntelligence.after_step` with this strategy's own penalty included, and that
penalty's gradient is known in closed form, ``2 c Omega (theta - anchor)``, so it is subtracted
there instead of paying for a second backward pass. Without the subtraction the penalty's pull
back toward the anchor would count as "loss lowered" and inflate the importance of the very
parameters being held. (Gradients changed by another strategy's ``adjust_gradients`` are not
undone; SI is not meant to be stacked with one.) The update ``new - old`` is the step actually
taken, so momentum or Adam are accounted for as in the paper.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> from adaptd.adapters.continual.training import TrainConfig, train_task
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(64, 3, generator=g)
>>> task = ContinualTask(0, x, (x[:, 0] > 0).long(), x, (x[:, 0] > 0).long())
>>> net = PolicyNet(3, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> si = SynapticIntelligence(c=0.5)
>>> _ = train_task(model, si, task, TrainConfig(epochs=3, lr=0.2))
>>> omega = si.importance
>>> omega is not None and all(bool((o >= 0).all()) for o in omega.values())
True
>>> float(si.penalty(model, model.params, x, task.train_y, task))
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import non_negative, positive
from ..fast_weights import Params
from .anchored import AnchoredPenalty
from .importance import check_shapes, copy_params
from .protocol import ContinualModel, ContinualTask, tensor_bytes

__all__ = ["SynapticIntelligence"]


class SynapticIntelligence(AnchoredPenalty):
    """Synaptic intelligence: a path-integral importance per parameter and a quadratic
    penalty toward the latest task's weights.

    Parameters
    ----------
    c
        Strength of the penalty ``c * sum_k Omega_k (theta_k - anchor_k)^2``.
    xi
        Damping added to the squared change in the importance's denominator, so that
        parameters that barely moved do not get an unbounded importance.

    Examples
    --------
    >>> si = SynapticIntelligence(c=0.1, xi=1e-3)
    >>> si.importance is None, si.tasks_seen
    (True, 0)

    References
    ----------
    Zenke, F., Poole, B. & Ganguli, S. (2017). Continual learning through synaptic
    intelligence. ICML, PMLR 70, 3987-3995.
    """

    name: ClassVar[str] = "si"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = ({}, {"c": 10.0, "xi": 0.1})
    importance_key: ClassVar[str] = "omega"

    def __init__(self, c: float = 1.0, xi: float = 1e-3) -> None:
        self.c = non_negative("c", c)
        self.xi = positive("xi", xi)
        super().__init__()

    @property
    def scale(self) -> float:
        """``c``."""
        return self.c

    def _reset(self) -> None:
        super()._reset()
        self._start: Params | None = None
        """Weights at the start of the current task (``delta`` is measured from them)."""
        self._path: Params = {}
        """The running path integral ``w`` of the current task."""

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Start the path integral at zero from ``model.params``."""
        self._check(model.params)
        self._restart(model.params)

    def _restart(self, params: Mapping[str, Tensor]) -> None:
        """Measure the next task's path integral and change from ``params``."""
        self._start = copy_params(params)
        self._path = {k: torch.zeros_like(v) for k, v in params.items()}

    def after_step(
        self,
        model: ContinualModel,
        old: Mapping[str, Tensor],
        new: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        task: ContinualTask,
    ) -> None:
        """Add ``-g * (new - old)`` to the path integral, ``g`` the task loss's gradient (the
        step's gradient minus this strategy's penalty gradient at ``old``)."""
        if self._start is None:
            raise ValueError("after_step was called before before_task")
        for k, g in grads.items():
            task_grad = g
            if self._importance is not None and self._anchor is not None:
                task_grad = g - 2 * self.c * self._importance[k] * (old[k] - self._anchor[k])
            self._path[k] = self._path[k] - task_grad.detach() * (new[k] - old[k]).detach()

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Fold the task's path integral into ``Omega``; anchor at ``model.params``."""
        if self._start is None:
            raise ValueError("after_task was called before before_task")
        check_shapes(self._start, model.params)
        new = {
            k: self._path[k] / ((v.detach() - self._start[k]).pow(2) + self.xi)
            for k, v in model.params.items()
        }
        self.fold(new, model.params, decay=1.0)
        # a negative path integral (the loss rose along k) carries no importance
        self._importance = {k: v.clamp(min=0) for k, v in self._importance.items()}
        self._restart(model.params)

    def memory_bytes(self) -> int:
        """Bytes of ``Omega``, the anchor, the task's start weights and the path integral."""
        return super().memory_bytes() + tensor_bytes([self._start, self._path])

    def state_dict(self) -> dict[str, Any]:
        """``Omega``, the anchor, the current task's start weights and path integral
        (copies) and ``tasks_seen``."""
        return {
            **super().state_dict(),
            "start": copy_params(self._start),
            "path": copy_params(self._path),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's."""
        super().load_state_dict(state)
        self._start = copy_params(state.get("start"))
        self._path = copy_params(state.get("path")) or {}
