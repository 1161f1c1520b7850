"""What the gradient-based meta-learners share: a meta-gradient with respect to
``meta_parameters()``, applied by Adam (:mod:`adaptd.adapters.meta.adam`).

The default ``meta_gradient`` is the second-order one (MAML's): the gradient of the mean query
loss after a differentiable inner loop, through every inner step
(:func:`adaptd.adapters.meta.batched.adapted_query_losses`). Subclasses choose what the inner
loop adapts (``inner_names``) and with which step sizes (``step_sizes``), or replace
``meta_gradient`` altogether (first-order MAML).

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet
>>> learner = GradientLearner(PolicyNet(2, (4,)), inner_steps=1, inner_lr=0.1, meta_lr=0.01,
...                           backend="autograd", seed=0)
>>> x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
>>> grads, stats = learner.meta_gradient([Task(x[:3], x[:3, 0], x[3:], x[3:, 0])] * 2)
>>> sorted(grads) == sorted(learner.meta_parameters()), stats.tasks
(True, 2)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..fast_weights import Params, StepSchedule
from ..protocol import MetaStats, Task
from .adam import Adam
from .base import FastWeightLearner, meta_stats
from .batched import adapted_query_losses, broadcast, stack_tasks, task_losses

__all__ = ["GradientLearner"]


class GradientLearner(FastWeightLearner):
    """Adam on a meta-gradient of ``meta_parameters()``; second-order unless overridden.

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`;
    ``meta_lr`` is Adam's step size (betas 0.9, 0.999; eps 1e-8).
    """

    second_order = True

    def _reset(self) -> None:
        super()._reset()
        self.optimizer = Adam(lr=self.meta_lr)

    def meta_gradient(self, tasks: Sequence[Task]) -> tuple[Params, MetaStats]:
        """The gradient of the mean post-adaptation query loss with respect to every
        meta-parameter (keys as ``meta_parameters()``), differentiating through the inner
        loop, with the batch's statistics; the learner is left unchanged."""
        start = time.perf_counter()
        sxs, sys_, qxs, qys = self._columns(tasks)
        meta = {k: v.detach().requires_grad_() for k, v in self.meta_parameters().items()}
        with torch.enable_grad():
            after = adapted_query_losses(
                self.net,
                {k: meta[k] for k in self.params},
                stack_tasks(sxs, sys_),
                stack_tasks(qxs, qys),
                steps=self.inner_steps,
                lr=self._differentiable_step_sizes(meta),
                loss=self.loss,
                backend=self.backend,
                names=self.inner_names,
            )
            grads = torch.autograd.grad(after.mean(), list(meta.values()))
        before = task_losses(self.net, broadcast(self.params, len(sxs)), qxs, qys, self.loss)
        return dict(zip(meta, grads, strict=True)), meta_stats(before, after, start)

    def meta_update(self, tasks: Sequence[Task]) -> MetaStats:
        """One Adam step on ``meta_gradient(tasks)`` plus, for the ``params`` entries, the
        ``regularizer``'s gradient (if any) at the current ``params``; returns the batch's
        query losses (without the regularizer)."""
        start = time.perf_counter()
        meta_grad, stats = self.meta_gradient(tasks)
        extra = None if self.regularizer is None else self.regularizer.gradient(self.params)
        if extra is not None:
            # Adam sees one objective: the meta-loss plus the penalty on the initialisation.
            meta_grad = {k: g + extra[k] if k in extra else g for k, g in meta_grad.items()}
        self._set_meta_parameters(self.optimizer.step(self.meta_parameters(), meta_grad))
        self.updates += 1
        return stats._replace(seconds=time.perf_counter() - start)

    def _differentiable_step_sizes(self, meta: Mapping[str, Tensor]) -> StepSchedule:
        """``step_sizes()`` in terms of the differentiable copies ``meta``."""
        del meta
        return self.inner_lr

    def _set_meta_parameters(self, values: Mapping[str, Tensor]) -> None:
        self.params = {k: values[k] for k in self.params}

    def _extra_state(self) -> dict[str, Any]:
        return {"adam": self.optimizer.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        adam = state.get("adam")
        if not isinstance(adam, dict):
            raise ValueError(f"{type(self).__name__} state has no 'adam' optimizer state")
        unknown = set(adam.get("exp_avg", {})) - set(self.meta_parameters())
        if unknown:
            raise ValueError(f"Adam state has moments for unknown params {sorted(unknown)}")
        self.optimizer.load_state_dict(adam)
