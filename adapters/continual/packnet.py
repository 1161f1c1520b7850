"""PackNet: one fixed network packed with several tasks by iterative pruning (Mallya &
Lazebnik, 2018).

Every weight matrix has an owner tensor of the same shape: -1 for a free weight, else the
index of the task that owns it (its position in the order the tasks were packed: its id when
tasks arrive as 0, 1, 2...). Training a task changes only free weights (``adjust_gradients``
zeroes the other gradients). After the task (``after_task``), among the free weights of each
matrix the ``1 - prune`` fraction largest in magnitude become the task's, the rest are set to
zero, and the kept weights are fine-tuned for ``retrain_steps`` minibatch steps with the pruned
ones held at zero (the paper's post-pruning retraining); the weights still free are then
re-initialised, small and seeded, as fresh capacity for the next task. Biases and batch-norm
affine parameters are trained with the first task only and frozen afterwards, as the paper
does for its biases (its batch-norm statistics stay those of the first task too).

Prediction uses the task identity, as in the paper: ``predict(model, x, task)`` runs the
network with the weights owned by ``task`` and the tasks packed before it, every other weight
zeroed. Those weights never change again, so an earlier task's predictions are exactly what
they were after it was packed (retention 100 % by construction). A task that was not packed
sees the model's current weights.

Capacity shrinks geometrically: after ``t`` tasks a matrix keeps ``floor``-rounded
``prune ** t`` of its weights free. With the default ``prune=0.75`` every matrix of the digits
network (64 -> 100 -> 100 -> 10) has less than 1 % free after 16 tasks and none after 22 to 30
tasks (1 000 to 10 000 weights); with ``prune=0.5``, less than 1 % after 7. Once a matrix has
no free weight it no longer learns: later tasks are served by the earlier tasks' frozen weights
(still exact for the old tasks; plasticity 0).
:class:`~adaptd.adapters.continual.growth.Growth` adds hidden units instead.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> from adaptd.adapters.continual.training import TrainConfig, train_task
>>> g = torch.Generator().manual_seed(0)
>>> def task(i):
...     x = torch.randn(40, 4, generator=g)
...     y = (x[:, i] > 0).long()
...     return ContinualTask(i, x, y, x, y)
>>> net = PolicyNet(4, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> packnet = PackNet(prune=0.5, retrain_steps=5)
>>> first, second = task(0), task(1)
>>> _ = train_task(model, packnet, first, TrainConfig(epochs=3, lr=0.5))
>>> before = packnet.predict(model, first.test_x, first)
>>> int((packnet.owner["layers.0.weight"] == 0).sum()), packnet.free_fraction()["layers.0.weight"]
(16, 0.5)
>>> _ = train_task(model, packnet, second, TrainConfig(epochs=3, lr=0.5))
>>> torch.equal(packnet.predict(model, first.test_x, first), before)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import in_interval, int_at_least, integer, non_negative
from ..fast_weights import Params
from ..losses import detached_leaves
from ..network import PolicyNet, forward
from .protocol import ContinualModel, ContinualTask, Strategy
from .seeds import derive_seed
from .training import batch_loss

__all__ = ["PackNet"]


class PackNet(Strategy):
    """Iterative pruning: each task owns a disjoint subset of one fixed network's weights.

    Uses the task identity at test time: ``predict`` keeps the weights of the given task and
    of the tasks packed before it.

    Parameters
    ----------
    prune
        Fraction of the free weights of each matrix released again after a task (rounded
        down), in ``(0, 1)``; the task keeps the rest.
    retrain_steps
        Minibatch SGD steps that fine-tune the kept weights after pruning (0: none).
    retrain_lr
        Step size of those steps.
    batch_size
        Examples per retraining step.
    reinit_scale
        Freed weights are redrawn from ``U(-s/sqrt(fan_in), s/sqrt(fan_in))`` with this
        ``s``, a fraction of the ``nn.Linear`` default range.
    seed
        Seed of the retraining batches and of the re-initialisation (combined with the task's
        position).

    Examples
    --------
    >>> PackNet(prune=0.5).prune
    0.5

    References
    ----------
    Mallya, A., & Lazebnik, S. (2018). PackNet: Adding multiple tasks to a single network by
    iterative pruning. CVPR, 7765-7773.
    """

    name: ClassVar[str] = "packnet"
    task_identity: ClassVar[bool] = True
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"prune": 0.5, "retrain_steps": 0},
    )
    regularizer: ClassVar[bool] = False

    def __init__(
        self,
        prune: float = 0.75,
        retrain_steps: int = 50,
        retrain_lr: float = 0.05,
        batch_size: int = 32,
        reinit_scale: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.prune = in_interval("prune", prune, 0, 1, closed=(False, False))
        self.retrain_steps = int_at_least("retrain_steps", retrain_steps, 0)
        self.batch_size = int_at_least("batch_size", batch_size, 1)
        self.retrain_lr = non_negative("retrain_lr", retrain_lr)
        self.reinit_scale = non_negative("reinit_scale", reinit_scale)
        self.seed = integer("seed", seed)
        super().__init__()

    def _reset(self) -> None:
        self.owner: dict[str, Tensor] = {}
        """Per weight matrix (every parameter with two dimensions), int32: -1 free, else the
        position of the task that owns the weight."""
        self.position: dict[int, int] = {}
        """Task id -> its position in the packing order (the latest, if packed twice)."""
        self.packed = 0
        """Tasks packed so far."""
        self.widths: list[list[int]] = []
        """Hidden widths of the network when each task was packed (they change only when
        the network grows)."""

    def free_fraction(self) -> dict[str, float]:
        """Fraction of each weight matrix still free."""
        return {k: float((o < 0).float().mean()) for k, o in self.owner.items()}

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        self._check(model)

    def _check(self, model: ContinualModel) -> None:
        """Set up the owner tensors at the first task; ValueError when ``model`` does not
        match them."""
        net = model.net
        if not isinstance(net, PolicyNet):
            raise ValueError(f"PackNet needs a PolicyNet, got {type(net).__name__}")
        if not self.owner:
            self.owner = {
                k: torch.full(v.shape, -1, dtype=torch.int32)
                for k, v in model.params.items()
                if v.ndim == 2
            }
        for k, o in self.owner.items():
            if k not in model.params or model.params[k].shape != o.shape:
                raise ValueError(
                    f"parameter {k!r} does not match its owner tensor {tuple(o.shape)}"
                )

    def trainable(self, model: ContinualModel, task: ContinualTask) -> tuple[str, ...] | None:
        if self.packed == 0:
            return tuple(model.params)  # the first task also trains biases and batch norm
        names = tuple(k for k, o in self.owner.items() if bool((o < 0).any()))
        return names or tuple(self.owner)  # no capacity left: zero gradients, nothing learns

    def adjust_gradients(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        grads: Params,
        task: ContinualTask,
    ) -> Params:
        return {
            k: g.masked_fill(self.owner[k] >= 0, 0.0) if k in self.owner else g
            for k, g in grads.items()
        }

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        self._check(model)
        position = self.packed
        params = dict(model.params)
        for k, owner in self.owner.items():
            free = owner < 0
            count = int(free.sum())
            keep = count - math.floor(self.prune * count + 1e-9)
            magnitude = params[k].detach().abs().masked_fill(~free, -1.0).flatten()
            kept = torch.argsort(magnitude, descending=True, stable=True)[:keep]
            owner = owner.flatten().clone()
            owner[kept] = position
            owner = owner.view_as(free)
            params[k] = params[k].detach().masked_fill((owner < 0) & free, 0.0)
            self.owner[k] = owner
        params = self._retrain(model, params, task, position)
        model.params = self._reinitialise(params, position)
        self.position[task.id] = position
        self.widths.append(list(model.net.hidden))
        self.packed += 1

    def predict(self, model: ContinualModel, x: Tensor, task: ContinualTask) -> Tensor:
        position = self.position.get(task.id)
        if position is None:
            return model.output(model.params, x)
        net, params = self.packed_weights(model, position)
        return forward(net, params, x)

    def packed_weights(self, model: ContinualModel, position: int) -> tuple[PolicyNet, Params]:
        """The network and weights that serve the task packed at ``position``: the weights
        owned by it and by earlier tasks, the others zero, cut to the widths of that time."""
        widths = tuple(self.widths[position])
        net = model.net
        if widths != tuple(net.hidden):
            with torch.device("meta"):  # the architecture only; weights come from params
                net = net.with_hidden(widths)
        out: Params = {}
        for k, shape in ((k, p.shape) for k, p in net.named_parameters()):
            cut = tuple(slice(0, n) for n in shape)
            value = model.params[k][cut]
            if k in self.owner:
                owner = self.owner[k][cut]
                value = value.masked_fill((owner < 0) | (owner > position), 0.0)
            out[k] = value.contiguous()
        return net, out

    def _retrain(
        self, model: ContinualModel, params: Params, task: ContinualTask, position: int
    ) -> Params:
        """``retrain_steps`` SGD steps on the weights owned by ``position`` (and on biases and
        batch norm for the first task); every other weight, pruned ones included, stays."""
        if self.retrain_steps == 0:
            return params
        names = [k for k, o in self.owner.items() if bool((o == position).any())]
        if position == 0:
            names += [k for k in params if k not in self.owner]
        if not names:
            return params
        generator = torch.Generator().manual_seed(derive_seed(self.seed, position))
        n = len(task.train_y)
        order = torch.randperm(n, generator=generator)
        lo = 0
        for _ in range(self.retrain_steps):
            if lo >= n:
                order, lo = torch.randperm(n, generator=generator), 0
            idx = order[lo : lo + self.batch_size]
            lo += self.batch_size
            leaves = detached_leaves(params, names)
            with torch.enable_grad():
                loss = batch_loss(model, leaves, task.train_x[idx], task.train_y[idx], task)
                grads = torch.autograd.grad(loss, [leaves[k] for k in names])
            for k, g in zip(names, grads, strict=True):
                if k in self.owner:
                    g = g.masked_fill(self.owner[k] != position, 0.0)
                params[k] = params[k].detach() - self.retrain_lr * g
        return params

    def _reinitialise(self, params: Params, position: int) -> Params:
        """``params`` with every free weight redrawn small (seeded), as fresh capacity."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, position, offset=500_009))
        out = dict(params)
        for k, owner in self.owner.items():
            bound = self.reinit_scale / math.sqrt(owner.shape[1])
            fresh = torch.empty(owner.shape, dtype=params[k].dtype)
            fresh.uniform_(-bound, bound, generator=generator)
            out[k] = torch.where(owner < 0, fresh, params[k])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": {k: o.clone() for k, o in self.owner.items()},
            "position": dict(self.position),
            "packed": self.packed,
            "widths": [list(w) for w in self.widths],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()
        self.owner = {k: o.clone().to(torch.int32) for k, o in state["owner"].items()}
        self.position = {int(k): int(v) for k, v in state["position"].items()}
        self.packed = int(state["packed"])
        self.widths = [[int(n) for n in w] for w in state["widths"]]
