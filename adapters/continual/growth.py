"""Growth: a PackNet that adds hidden units when a task cannot be learned in the capacity left.

While a task trains, the loss on a fixed probe of its training data (its first ``probe``
examples, at the weights after each step) is watched; when it has not improved by more than
``min_delta`` for ``patience`` steps and is still above ``threshold``, every hidden layer is
widened by ``units`` (``max_hidden`` caps each layer's width). Before a task, a weight matrix
with less than ``min_free`` of its weights free also triggers a widening. :func:`widen` adds
the units without changing the network's function (small random incoming weights, zero
outgoing weights); every new weight is free capacity for the task being trained, pruned and
packed with it as :class:`~adaptd.adapters.continual.packnet.PackNet` does. The training loop
sees the new ``model.net``, asks ``trainable`` again and restarts its optimizer.

Earlier tasks keep exact predictions: each is served by the network cut back to the widths it
had when the task was packed (units added later are removed, not multiplied by zero, so the
arithmetic is the one it was). Prediction uses the task identity, as PackNet's.

The current widths are part of the strategy's state; a model whose ``net`` does not match its
``params`` (rebuilt from a checkpoint of its weights) gets a ``net`` of the right widths at the
next hook.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, forward, init_params
>>> net = PolicyNet(3, (4, 4), out_dim=2)
>>> params = init_params(net, seed=0)
>>> wide, wide_params = widen(net, params, units=2, seed=0)
>>> wide.hidden, tuple(wide_params["layers.2.weight"].shape)
((6, 6), (6, 6))
>>> x = torch.randn(5, 3)
>>> torch.allclose(forward(wide, wide_params, x), forward(net, params, x))
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..checks import in_interval, is_int, non_negative, positive_int
from ..fast_weights import Params
from ..network import PolicyNet
from .packnet import PackNet
from .protocol import ContinualModel, ContinualTask
from .seeds import derive_seed
from .training import batch_loss

__all__ = ["Growth", "widen"]


def widen(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    units: int | Sequence[int],
    seed: int,
    scale: float = 0.1,
) -> tuple[PolicyNet, Params]:
    """A wider copy of ``net`` and ``params`` that computes the same function.

    Hidden layer ``l`` gains ``units`` (or ``units[l]``) units at the end. A new unit's
    incoming weights are drawn from ``U(-scale/sqrt(fan_in), scale/sqrt(fan_in))`` (seeded),
    its bias is zero and its batch-norm affine map the identity, and its outgoing weights are
    zero, so the outputs do not change (up to the rounding of summing extra zeros). ``net`` and
    ``params`` are not modified.
    """
    hidden = tuple(net.hidden)
    if not hidden:
        raise ValueError("net has no hidden layer to widen")
    extra = (units,) * len(hidden) if isinstance(units, int) else tuple(units)
    if len(extra) != len(hidden) or any(not is_int(u) or u < 0 for u in extra):
        raise ValueError(
            f"units must be a non-negative integer or one per hidden layer, got {units!r}"
        )
    widths = tuple(h + u for h, u in zip(hidden, extra, strict=True))
    wide = net.with_hidden(widths)
    generator = torch.Generator().manual_seed(int(seed))
    out: Params = {}
    for name, param in wide.named_parameters():
        old = params[name]
        value = torch.zeros(param.shape, dtype=old.dtype)
        value[tuple(slice(0, n) for n in old.shape)] = old
        if value.ndim == 2 and value.shape[0] > old.shape[0]:  # incoming weights of new units
            bound = scale / math.sqrt(value.shape[1])
            rows = torch.empty(value.shape[0] - old.shape[0], value.shape[1], dtype=old.dtype)
            value[old.shape[0] :] = rows.uniform_(-bound, bound, generator=generator)
        elif value.ndim == 1 and name.rsplit(".", 1)[-1] == "weight":  # batch-norm scale
            value[old.shape[0] :] = 1.0
        out[name] = value
    return wide, out


class Growth(PackNet):
    """PackNet with hidden units added when a task's loss plateaus high or capacity runs out.

    Uses the task identity at test time, as PackNet does.

    Parameters
    ----------
    prune, retrain_steps, retrain_lr, batch_size, reinit_scale, seed
        As for :class:`~adaptd.adapters.continual.packnet.PackNet` (``seed`` also seeds the
        new units).
    units
        Units added to every hidden layer at each widening.
    threshold
        Widen on a plateau only while the probe loss is above this.
    patience
        Steps without an improvement of more than ``min_delta`` that make a plateau.
    min_delta
        Smallest decrease of the probe loss that counts as an improvement.
    min_free
        Widen before a task when some weight matrix has less than this fraction free.
    max_hidden
        No hidden layer grows beyond this width; ``None``: no cap.
    probe
        Training examples (the first ones) on which the plateau is judged.

    Examples
    --------
    >>> Growth(units=8, max_hidden=64).max_hidden
    64

    References
    ----------
    Mallya, A., & Lazebnik, S. (2018). PackNet: Adding multiple tasks to a single network by
    iterative pruning. CVPR. Yoon, J., Yang, E., Lee, J., & Hwang, S. J. (2018). Lifelong
    learning with dynamically expandable networks. ICLR (growth when the loss stays high).
    """

    name: ClassVar[str] = "growth"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"units": 2, "patience": 2, "threshold": 0.0, "max_hidden": 24, "retrain_steps": 0},
    )

    def __init__(
        self,
        prune: float = 0.75,
        retrain_steps: int = 50,
        retrain_lr: float = 0.05,
        batch_size: int = 32,
        reinit_scale: float = 0.1,
        seed: int = 0,
        *,
        units: int = 16,
        threshold: float = 0.1,
        patience: int = 20,
        min_delta: float = 1e-3,
        min_free: float = 0.01,
        max_hidden: int | None = None,
        probe: int = 256,
    ) -> None:
        self.units = positive_int("units", units)
        self.patience = positive_int("patience", patience)
        self.probe = positive_int("probe", probe)
        self.threshold = non_negative("threshold", threshold)
        self.min_delta = non_negative("min_delta", min_delta)
        self.min_free = in_interval("min_free", min_free, 0, 1, closed=(True, False))
        self.max_hidden = positive_int("max_hidden", max_hidden, optional=True)
        super().__init__(prune, retrain_steps, retrain_lr, batch_size, reinit_scale, seed)

    def _reset(self) -> None:
        super()._reset()
        self.hidden: list[int] | None = None
        """Current hidden widths (``None`` before the first task)."""
        self.growths = 0
        """Widenings so far (each seeds its new units)."""
        self._best = math.inf  # best probe loss of the current task since the last widening
        self._stale = 0  # steps since it last improved

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        self._sync(model)
        super().before_task(model, task)
        self._best, self._stale = math.inf, 0
        if self.packed and min(self.free_fraction().values()) < self.min_free:
            self._grow(model)

    def trainable(self, model: ContinualModel, task: ContinualTask) -> tuple[str, ...] | None:
        self._sync(model)
        return super().trainable(model, task)

    def predict(self, model: ContinualModel, x: Tensor, task: ContinualTask) -> Tensor:
        self._sync(model)
        return super().predict(model, x, task)

    def after_step(
        self,
        model: ContinualModel,
        old: Mapping[str, Tensor],
        new: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        task: ContinualTask,
    ) -> None:
        with torch.no_grad():
            x, y = task.train_x[: self.probe], task.train_y[: self.probe]
            loss = float(batch_loss(model, dict(model.params), x, y, task))
        if loss < self._best - self.min_delta:
            self._best, self._stale = loss, 0
            return
        self._stale += 1
        if self._stale >= self.patience and loss > self.threshold and self._grow(model):
            self._best, self._stale = loss, 0

    def _grow(self, model: ContinualModel) -> bool:
        """Widen every hidden layer by ``units`` (capped); False when nothing can grow."""
        net = model.net
        cap = math.inf if self.max_hidden is None else self.max_hidden
        extra = [int(max(0, min(self.units, cap - h))) for h in net.hidden]
        if not any(extra):
            return False
        seed = derive_seed(self.seed, self.growths, offset=700_001)
        wide, params = widen(net, model.params, extra, seed, scale=self.reinit_scale)
        for k, owner in self.owner.items():
            grown = torch.full(params[k].shape, -1, dtype=torch.int32)
            grown[: owner.shape[0], : owner.shape[1]] = owner
            self.owner[k] = grown
        model.net, model.params = wide, params
        self.hidden = list(wide.hidden)
        self.growths += 1
        return True

    def _sync(self, model: ContinualModel) -> None:
        """Record the widths at the first task; rebuild ``model.net`` when it does not have
        the widths the state says the weights have."""
        net = model.net
        if not isinstance(net, PolicyNet):
            raise ValueError(f"Growth needs a PolicyNet, got {type(net).__name__}")
        if self.hidden is None:
            self.hidden = list(net.hidden)
        elif list(net.hidden) != self.hidden:
            model.net = net.with_hidden(tuple(self.hidden))

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "hidden": None if self.hidden is None else list(self.hidden),
            "growths": self.growths,
            "plateau": [self._best, self._stale],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.hidden = None if state["hidden"] is None else [int(h) for h in state["hidden"]]
        self.growths = int(state["growths"])
        self._best, self._stale = float(state["plateau"][0]), int(state["plateau"][1])
