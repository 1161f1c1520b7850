"""Learning without forgetting (Li & Hoiem, 2016): keep the previous model's outputs on the new
task's own inputs, by distillation, without storing any old data.

Before each task after the first, the current weights are kept as the previous model. While
the task trains, every batch adds

    alpha * T^2 * KL(softmax(old(x) / T) || softmax(new(x) / T))

for a classifier (``T`` the temperature, ``T^2`` keeping the gradient's scale independent of
``T`` as in Hinton et al.'s distillation), or ``alpha * mean((new(x) - old(x))^2)`` for a
regressor. The paper writes the old-task term as a cross-entropy with the previous model's
softened outputs as targets; the KL divergence differs from it by the targets' entropy, a
constant, so the gradients are the same and the penalty is zero at the previous weights.

Which outputs are distilled: in the task-incremental setting (tasks with ``classes``) only the
columns of the classes of earlier tasks (their union), which are the old tasks' heads in the
paper; as soon as any earlier task used every output (``classes`` None: class- or
domain-incremental), all of them. The current task's own classes are learned from its labels.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> net = PolicyNet(3, (8,), out_dim=4)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
>>> y = torch.tensor([0, 1] * 4)
>>> lwf = LearningWithoutForgetting(alpha=1.0, temperature=2.0)
>>> lwf.after_task(model, ContinualTask(0, x, y, x, y, classes=(0, 1)))
>>> task = ContinualTask(1, x, y + 2, x, y + 2, classes=(2, 3))
>>> lwf.before_task(model, task)
>>> lwf.distilled_classes
[0, 1]
>>> float(lwf.penalty(model, model.params, x, task.train_y, task))
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import non_negative, positive
from ..fast_weights import Params
from .importance import check_shapes, copy_params
from .protocol import ContinualModel, ContinualTask, Strategy, tensor_bytes

__all__ = ["LearningWithoutForgetting"]


class LearningWithoutForgetting(Strategy):
    """LwF: distillation of the previous model's outputs on the current task's inputs.

    Parameters
    ----------
    alpha
        Weight of the distillation term (the paper's ``lambda_o``, 1 there).
    temperature
        Softening ``T`` of both distributions (2 in the paper); ignored for regression.

    Examples
    --------
    >>> lwf = LearningWithoutForgetting()
    >>> lwf.previous is None, lwf.distilled_classes
    (True, None)

    References
    ----------
    Li, Z. & Hoiem, D. (2016). Learning without forgetting. ECCV; IEEE TPAMI 40(12), 2018.

    Hinton, G., Vinyals, O. & Dean, J. (2015). Distilling the knowledge in a neural network.
    arXiv:1503.02531.
    """

    name: ClassVar[str] = "lwf"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"alpha": 5.0, "temperature": 1.0},
    )
    regularizer: ClassVar[bool] = False

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        self.alpha = non_negative("alpha", alpha)
        self.temperature = positive("temperature", temperature)
        super().__init__()

    def _reset(self) -> None:
        self._previous: Params | None = None
        self._classes: list[int] | None = None
        """Union of the finished tasks' classes; None when they used every output."""
        self._all_outputs = False
        """True once a finished task had ``classes`` None."""
        self.tasks_seen = 0
        """Tasks finished so far."""

    @property
    def previous(self) -> Params | None:
        """The previous model's weights, distilled from (None during the first task)."""
        return None if self._previous is None else dict(self._previous)

    @property
    def distilled_classes(self) -> list[int] | None:
        """Output columns distilled, sorted; None for every output."""
        return None if self._all_outputs or self._classes is None else list(self._classes)

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Keep ``model.params`` as the previous model (once a task has finished)."""
        self._previous = copy_params(model.params) if self.tasks_seen > 0 else None

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Add ``task``'s classes to those distilled from now on."""
        if task.classes is None:
            self._all_outputs = True
        else:
            self._classes = sorted(set(self._classes or ()) | {int(c) for c in task.classes})
        self.tasks_seen += 1

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """The distillation term on the batch's inputs ``x``; None during the first task."""
        if self._previous is None:
            return None
        check_shapes(self._previous, params)
        new = model.output(params, x)
        with torch.no_grad():
            old = model.output(self._previous, x)
        if model.loss != "cross_entropy":
            return self.alpha * torch.mean((new - old) ** 2)
        columns = self.distilled_classes
        if columns is not None:
            index = torch.tensor(columns, dtype=torch.long, device=new.device)
            new, old = new.index_select(-1, index), old.index_select(-1, index)
        t = self.temperature
        log_new = torch.log_softmax(new / t, dim=-1)
        log_old = torch.log_softmax(old / t, dim=-1)
        kl = torch.nn.functional.kl_div(log_new, log_old, reduction="batchmean", log_target=True)
        return self.alpha * t**2 * kl

    def memory_bytes(self) -> int:
        """Bytes of the previous model's weights."""
        return tensor_bytes(self._previous)

    def state_dict(self) -> dict[str, Any]:
        """The previous weights (a copy), the classes distilled and ``tasks_seen``."""
        return {
            "name": self.name,
            "previous": copy_params(self._previous),
            "classes": None if self._classes is None else list(self._classes),
            "all_outputs": self._all_outputs,
            "tasks_seen": self.tasks_seen,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's."""
        super().load_state_dict(state)
        classes = state.get("classes")
        self._previous = copy_params(state.get("previous"))
        self._classes = None if classes is None else [int(c) for c in classes]
        self._all_outputs = bool(state.get("all_outputs", False))
        self.tasks_seen = int(state.get("tasks_seen", 0))
