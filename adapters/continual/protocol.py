"""What a continual-learning strategy is: hooks that a training loop calls before, during and
after each task of a sequence.

A :class:`ContinualModel` is what is trained: an architecture, its weights as a dict of
tensors (fast weights, never modified in place) and a loss. A :class:`Strategy` protects what
the model learned on earlier tasks through five hooks; the base class implements each as
"do nothing", so a strategy overrides only what it needs. The calling loop
(:func:`adaptd.adapters.continual.training.train_task` runs exactly this)::

    for task in tasks:                                   # ContinualTask, in order
        strategy.before_task(model, task)                # snapshot, new column, new mask...
        names = strategy.trainable(model, task)          # None: every parameter
        for x, y in batches(task):
            params = leaves(model.params, names)         # requires_grad on ``names``
            loss = task_loss(model, params, x, y, task)
            extra = strategy.penalty(model, params, x, y, task)   # EWC, distillation, replay
            grads = grad(loss + extra, params[names])
            grads = strategy.adjust_gradients(model, params, grads, task)  # GEM, masks
            model.params = step(params, grads)
            strategy.after_step(model, params, model.params, grads, task)  # SI, growth
        strategy.after_task(model, task)                 # Fisher, memory, pruning...

    output = strategy.predict(model, x, task)            # evaluation (task identity known)

Strategies that change the architecture (progressive columns, grown hidden units) replace
``model.net`` and ``model.params`` together in a hook; every other strategy leaves ``net``
alone. ``state_dict`` holds what a strategy learned (importances, anchors, memories, masks),
so a run can stop and resume.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> net = PolicyNet(4, (8,), out_dim=3)
>>> model = ContinualModel(net, init_params(net, seed=0), loss="cross_entropy")
>>> model.output(model.params, torch.zeros(5, 4)).shape
torch.Size([5, 3])
>>> task = ContinualTask(0, torch.zeros(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]),
...                      torch.zeros(2, 4), torch.tensor([1, 2]), classes=(1, 2))
>>> restrict(torch.tensor([[3.0, 1.0, 2.0]]), task.classes)
tensor([[-inf, 1., 2.]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..fast_weights import Params, check_loss
from ..network import PolicyNet, forward
from ..protocol import Loss

__all__ = [
    "ContinualModel",
    "ContinualTask",
    "Strategy",
    "restrict",
    "tensor_bytes",
]


class ContinualTask(NamedTuple):
    """One task of a sequence: data to train on and held-out data to judge it by."""

    id: int
    """Position in the sequence (0-based); strategies key their per-task state by it."""
    train_x: Tensor
    """Training features ``(n, in_dim)``."""
    train_y: Tensor
    """Training targets ``(n,)``: class ids for classification, floats for regression."""
    test_x: Tensor
    """Held-out features, never trained on."""
    test_y: Tensor
    """Held-out targets."""
    classes: tuple[int, ...] | None = None
    """Task-incremental setting: the output units this task may use (its classes); outputs of
    other classes are masked out of the loss and of predictions. ``None`` (class-incremental
    and domain-incremental settings): every output competes."""


def restrict(output: Tensor, classes: Sequence[int] | None) -> Tensor:
    """``output`` logits with every column outside ``classes`` set to ``-inf`` (a copy);
    ``output`` itself when ``classes`` is None."""
    if classes is None:
        return output
    keep = torch.zeros(output.shape[-1], dtype=torch.bool, device=output.device)
    keep[list(classes)] = True
    return output.masked_fill(~keep, float("-inf"))


@dataclass
class ContinualModel:
    """The trained model: an architecture, its current weights and its loss.

    ``net`` is only the architecture (a :class:`~adaptd.adapters.network.PolicyNet`, a module
    with a functional ``run(params, x)`` such as the progressive networks' columns, or any
    module ``torch.func.functional_call`` can run with ``params``); ``params`` is rebound to
    new tensors by every step, never modified in place.
    """

    net: nn.Module
    params: Params
    loss: Loss = "cross_entropy"

    def __post_init__(self) -> None:
        if isinstance(self.net, PolicyNet):
            check_loss(self.net, self.loss)
        missing = {name for name, _ in self.net.named_parameters()} - set(self.params)
        if missing:
            raise ValueError(f"params lack the network's parameters {sorted(missing)}")

    def output(self, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        """The network run with ``params`` on ``x``: logits ``(n, classes)`` or predictions
        ``(n,)``."""
        if type(self.net) is PolicyNet:  # the explicit matrix products are the fast path
            return forward(self.net, params, x)
        run = getattr(self.net, "run", None)  # a network's own functional forward, when it has one
        if callable(run):
            return run(params, x)
        return functional_call(self.net, dict(params), (x,))

    def parameter_count(self) -> int:
        """Scalars in ``params``."""
        return sum(p.numel() for p in self.params.values())


def tensor_bytes(value: object) -> int:
    """Bytes of every tensor reachable in ``value`` (tensors, mappings, sequences); what a
    strategy holds in memory beyond the model itself."""
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, Mapping):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


class Strategy:
    """Base class of the continual-learning strategies: every hook does nothing, so plain
    fine-tuning ("naive") is this class itself.

    A strategy is built with its hyperparameters only (no model): the model reaches it through
    the hooks, so one strategy object can protect any adapter's weights. Constructor arguments
    are stored as public attributes; learned state is set up in ``_reset`` and saved by
    ``state_dict``.
    """

    name: ClassVar[str] = "naive"
    """Short name used by the registry, the benchmarks and the state dict."""
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = ({},)
    """Constructor options checked by the conformance suite (``{}``: the defaults)."""
    task_identity: ClassVar[bool] = False
    """True when ``predict`` picks weights by the task's identity (a column, a mask), as
    progressive networks and PackNet do: in a class-incremental setting its results are then
    task-incremental ones."""
    regularizer: ClassVar[bool] = False
    """True when ``penalty`` is a function of the weights alone that is zero at the anchor
    on the task it was computed from (EWC, SI, MAS): the conformance suite checks that."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Set up learned state (nothing here)."""

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Called once before training on ``task``."""

    def trainable(self, model: ContinualModel, task: ContinualTask) -> tuple[str, ...] | None:
        """Names of the parameters trained on ``task``; ``None`` for all of them."""
        return None

    def penalty(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        x: Tensor,
        y: Tensor,
        task: ContinualTask,
    ) -> Tensor | None:
        """An extra, differentiable loss added to the task loss of the batch ``(x, y)``
        (``params`` are the leaves being differentiated); ``None`` for none."""
        return None

    def adjust_gradients(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        grads: Params,
        task: ContinualTask,
    ) -> Params:
        """The gradients the step will use, given those of the batch's loss (``grads`` has
        the trainable names only); by default unchanged."""
        return grads

    def after_step(
        self,
        model: ContinualModel,
        old: Mapping[str, Tensor],
        new: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        task: ContinualTask,
    ) -> None:
        """Called after each step with the weights before and after it and the gradients it
        used; ``model.params`` is already ``new``. A strategy may replace ``model.net`` and
        ``model.params`` here (growth); the loop then asks ``trainable`` again and restarts
        its optimizer's moments."""

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Called once after training on ``task``."""

    def predict(self, model: ContinualModel, x: Tensor, task: ContinualTask) -> Tensor:
        """Outputs for ``task``'s inputs ``x`` (the task identity is known at test time);
        by default the model's current weights."""
        return model.output(model.params, x)

    def memory_bytes(self) -> int:
        """Bytes this strategy holds beyond the model (importances, anchors, memories)."""
        return tensor_bytes(self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        """Everything the strategy learned, as copies (tensors, numbers, lists, dicts)."""
        return {"name": self.name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError when it belongs to another strategy."""
        if state.get("name") != self.name:
            raise ValueError(f"state of {state.get('name')!r} cannot load into {self.name!r}")
