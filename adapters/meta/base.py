"""What every meta-learner here shares: arguments, the initialisation, ``adapt``, task checks
and the state dict. Subclasses implement ``meta_update``.

The inner loop of ``adapt`` (and of the learners' meta-updates) is described by two hooks:
``inner_names`` (the parameters it adapts; ``None`` for all) and ``step_sizes`` (a number, one
tensor a parameter, or a schedule of those, one an inner step). ``meta_parameters`` is what the
outer loop learns.

``regularizer`` (a constructor argument, :class:`~adaptd.adapters.protocol.Regularizer`) is
the caller's hook into the outer loop, for example an online-EWC penalty that protects the
initialisation: every ``meta_update`` applies it next to its own update (the Adam learners add
its gradient to the meta-gradient, Reptile takes its decoupled step). The learner does not own
it: it is not part of the state dict, a deep copy of the learner shares it, and ``None`` (the
default) or a regularizer with no penalty yet leaves ``meta_update`` as it would be without
one.

Examples
--------
>>> import torch
>>> tasks = [Task(torch.zeros(4, 3), torch.zeros(4), torch.zeros(2, 3), torch.zeros(2))]
>>> [tuple(part.shape) for part in as_task_tensors(tasks, in_dim=3)[0]]
[(4, 3), (4,), (2, 3), (2,)]
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypedDict

import torch
from torch import Tensor

from ..checks import integer, one_of, positive_finite, positive_int
from ..fast_weights import (
    BACKENDS,
    AdaptResult,
    Backend,
    Params,
    StepSchedule,
    adapt,
    check_loss,
    saved_weights,
    weights_state,
)
from ..network import PolicyNet, init_params
from ..protocol import Loss, MetaStats, Regularizer, Task
from ..steps import SGD_STEP, InnerStep

__all__ = ["FastWeightLearner", "LearnerOptions", "as_task_tensors", "meta_stats"]


class LearnerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`FastWeightLearner` after ``net``, which a learner with
    options of its own passes on as they are (``**options: Unpack[LearnerOptions]``), so their
    defaults are written once, in that constructor."""

    inner_steps: int
    inner_lr: float
    meta_lr: float | None
    backend: Backend
    seed: int
    loss: Loss
    regularizer: Regularizer | None


class FastWeightLearner:
    """Base of the meta-learners; its constructor is theirs (each says what ``meta_lr`` means
    for it).

    Parameters
    ----------
    net
        The architecture (never modified).
    inner_steps, inner_lr
        Gradient steps and step size of the inner loop, used by ``meta_update`` and ``adapt``.
    meta_lr
        Step size of the outer loop; ``None`` takes the class's ``default_meta_lr``.
    backend
        Gradient engine: "autograd" (stacked weights, the fast path) or "func"
        (``torch.func.vmap``).
    seed
        Seed of the initial ``params``.
    loss
        "mse" (regression) or "cross_entropy" (classification, ``net.out_dim`` classes).
    regularizer
        An extra objective on the initialisation that every ``meta_update`` applies (see the
        module docstring); ``None`` for none.
    """

    algorithm: ClassVar[str] = ""
    """Name stored in the state dict, so one learner's state cannot load into another."""
    second_order: ClassVar[bool] = False
    """True when the meta-gradient differentiates through the inner loop."""
    outer_step: ClassVar[str] = "adam"
    """What ``meta_lr`` scales: "adam" (an Adam step on the meta-gradient) or "interpolation"
    (a move of the initialisation toward the adapted weights, Reptile's)."""
    default_meta_lr: ClassVar[float] = 1e-3
    """The outer step size when ``meta_lr`` is not given (Adam's, for the gradient learners)."""
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = ({},)
    """Constructor options that change what the learner computes, each checked by the
    conformance suite (``{}``: the defaults); a new option adds an entry."""

    def __init__(
        self,
        net: PolicyNet,
        *,
        inner_steps: int = 5,
        inner_lr: float = 0.05,
        meta_lr: float | None = None,
        backend: Backend = "autograd",
        seed: int = 0,
        loss: Loss = "mse",
        regularizer: Regularizer | None = None,
    ) -> None:
        if meta_lr is None:
            meta_lr = self.default_meta_lr
        if not isinstance(net, PolicyNet):
            raise ValueError(f"net must be a PolicyNet, got {type(net).__name__}")
        positive_int("inner_steps", inner_steps)
        positive_finite("inner_lr", inner_lr)
        positive_finite("meta_lr", meta_lr)
        one_of("backend", backend, BACKENDS)
        integer("seed", seed)
        check_loss(net, loss)
        if regularizer is not None and not isinstance(regularizer, Regularizer):
            raise ValueError(
                "regularizer must have gradient(params) and decoupled_step(params, size), "
                f"got {regularizer!r}"
            )
        self.net = net
        self.inner_steps = inner_steps
        self.inner_lr = float(inner_lr)
        self.meta_lr = float(meta_lr)
        self.backend: Backend = backend
        self.seed = seed
        self.loss: Loss = loss
        self.regularizer = regularizer
        self._reset()

    def _reset(self) -> None:
        self.params: Params = init_params(self.net, self.seed)
        self.updates = 0

    @property
    def inner_names(self) -> tuple[str, ...] | None:
        """The parameters the inner loop adapts; ``None`` means all of them."""
        return None

    def step_sizes(self) -> StepSchedule:
        """The inner loop's step size: ``inner_lr`` unless the learner learns its own."""
        return self.inner_lr

    def meta_parameters(self) -> dict[str, Tensor]:
        """Everything the outer loop learns, by name: here ``params``. The learner's own
        tensors (not copies), to be read, not modified."""
        return dict(self.params)

    def adapt(
        self,
        x: Tensor,
        y: Tensor,
        *,
        deadline_s: float | None = None,
        steps: int | None = None,
        start: Mapping[str, Tensor] | None = None,
        step: InnerStep = SGD_STEP,
        keep_best: bool = False,
    ) -> AdaptResult:
        """Fast weights for a new task: ``steps`` (default ``inner_steps``) inner steps on
        ``(x, y)`` from ``start`` (default the meta-learned ``params``; e.g. the last policy of
        a returning regime), with the learner's own step sizes and adapted parameters. A
        learned step-size schedule shorter than ``steps`` reuses its last step's sizes.
        ``step`` is the rule of one step (plain gradient descent by default; see
        :mod:`adaptd.adapters.steps`); ``keep_best`` returns the iterate with the least support
        loss (see :func:`adaptd.adapters.fast_weights.adapt`)."""
        if start is not None and set(start) != set(self.params):
            raise ValueError(
                f"start has params {sorted(start)}, the network has {sorted(self.params)}"
            )
        return adapt(
            self.net,
            self.params if start is None else start,
            x,
            y,
            steps=self.inner_steps if steps is None else steps,
            lr=self.step_sizes(),
            deadline_s=deadline_s,
            backend=self.backend,
            loss=self.loss,
            names=self.inner_names,
            step=step,
            keep_best=keep_best,
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"algorithm", "updates", "params"}`` plus the subclass's own state; all copies."""
        return {**weights_state(self.algorithm, self.updates, self.params), **self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output of the same algorithm and network shape."""
        params, updates = saved_weights(state, self.algorithm, self.params)
        self._load_extra_state(state)
        self.params, self.updates = params, updates

    def _columns(
        self, tasks: Sequence[Task]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Checked tasks as four lists: support x, support y, query x, query y."""
        dtype = next(iter(self.params.values())).dtype
        n_classes = self.net.out_dim if self.loss == "cross_entropy" else None
        parts = as_task_tensors(tasks, in_dim=self.net.in_dim, dtype=dtype, n_classes=n_classes)
        sx, sy, qx, qy = (list(column) for column in zip(*parts, strict=True))
        return sx, sy, qx, qy

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    def __deepcopy__(self, memo: dict[int, Any]) -> FastWeightLearner:
        # The regularizer is the caller's (its state moves on with the caller): shared.
        memo[id(self.regularizer)] = self.regularizer
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in vars(self).items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(inner_steps={self.inner_steps}, inner_lr={self.inner_lr}, "
            f"meta_lr={self.meta_lr}, backend={self.backend!r}, loss={self.loss!r}, "
            f"seed={self.seed}, updates={self.updates})"
        )


def meta_stats(before: Tensor, after: Tensor, start: float) -> MetaStats:
    """A meta-update's statistics from its tasks' query losses ``before`` and ``after``
    adaptation (``(T,)`` each) and its ``time.perf_counter()`` reading at ``start``."""
    return MetaStats(
        tasks=len(before),
        query_loss_before=float(before.mean()),
        query_loss_after=float(after.detach().mean()),
        seconds=time.perf_counter() - start,
    )


def as_task_tensors(
    tasks: Sequence[Task],
    *,
    in_dim: int,
    dtype: torch.dtype = torch.float32,
    n_classes: int | None = None,
) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Validated ``(support_x, support_y, query_x, query_y)`` per task, cast to ``dtype``;
    with ``n_classes`` the targets are class ids, checked and cast to ``int64``."""
    if len(tasks) == 0:
        raise ValueError("tasks is empty: a meta-update needs at least one task")
    target = dtype if n_classes is None else torch.int64
    out = []
    for i, task in enumerate(tasks):
        sx, qx = (torch.as_tensor(part, dtype=dtype) for part in (task[0], task[2]))
        sy, qy = (torch.as_tensor(part) for part in (task[1], task[3]))
        if n_classes is not None:
            for name, y in (("support", sy), ("query", qy)):
                if not torch.equal(y, y.to(torch.int64).to(y.dtype)) or (
                    y.numel() and not (int(y.min()) >= 0 and int(y.max()) < n_classes)
                ):
                    raise ValueError(f"task {i}: {name}_y must hold class ids 0..{n_classes - 1}")
        sy, qy = sy.to(target), qy.to(target)
        for name, x, y in (("support", sx, sy), ("query", qx, qy)):
            if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != in_dim:
                raise ValueError(
                    f"task {i}: {name}_x must have shape (n >= 1, {in_dim}), got {tuple(x.shape)}"
                )
            if tuple(y.shape) != (x.shape[0],):
                raise ValueError(
                    f"task {i}: {name}_y must have shape ({x.shape[0]},), got {tuple(y.shape)}"
                )
        out.append((sx, sy, qx, qy))
    return out
