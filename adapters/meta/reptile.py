"""Reptile (Nichol, Achiam & Schulman, 2018): move the initialisation toward adapted weights.

For each task of a batch, run ``inner_steps`` of gradient descent from ``θ`` to ``φ_i``, then

    θ ← θ + meta_lr · mean_i(φ_i − θ)

No second derivatives, no optimizer state.

A ``regularizer`` (see :mod:`adaptd.adapters.meta.base`) is applied as a decoupled step after
the interpolation, ``θ ← θ − regularizer.decoupled_step(θ_old, meta_lr · inner_lr)``, computed
at the initialisation the update started from: for a plain penalty
``θ ← θ − meta_lr · inner_lr · ∇R(θ_old)``. Why this form: Reptile's update is an interpolation,
not a gradient step, so there is no meta-gradient to add ``∇R`` to. Its direction
``φ_i − θ`` is ``−inner_lr`` times the sum of the inner loop's loss gradients, and the
interpolation scales it by ``meta_lr``; scaling ``∇R`` by the same ``meta_lr · inner_lr``
weighs the penalty like the loss of one inner step, so a penalty strength means the same as in
the inner objective. Putting the penalty into the inner loop instead would change adaptation
itself (the same inner loop serves ``adapt``) and would evaluate it at adapted weights rather
than at the initialisation it protects; keeping it out of the interpolation (as AdamW keeps
weight decay out of Adam's moments) leaves the Reptile step exactly as it was when the
penalty's gradient is zero. An explicit step overshoots a penalty whose curvature exceeds
``2 / (meta_lr · inner_lr)``; such a penalty bounds its own step (``decoupled_step``: online
EWC caps its importance, :mod:`adaptd.adapters.continual.anchored_regularizer`).

Which data the inner loop sees: all of the task, support and query together, as in the paper
(Reptile has no notion of a query set and more data gives a better ``φ_i``). The query set is
therefore not held out from the update. The ``MetaStats`` this learner reports are kept honest
with a second, support-only adaptation per task whose query loss is what
``query_loss_after`` means; it roughly doubles the cost of an update (still milliseconds).

Examples
--------
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> tasks = SinusoidTasks(seed=4).sample(3, k_support=10, k_query=10)
>>> learner = Reptile(PolicyNet(1, (40, 40)), inner_steps=3, inner_lr=0.01, meta_lr=0.5)
>>> stats = learner.meta_update(tasks)
>>> stats.tasks, learner.updates
(3, 1)
>>> stats.query_loss_after < stats.query_loss_before
True
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from ..network import PolicyNet
from ..protocol import MetaStats, Task
from .base import FastWeightLearner, meta_stats
from .batched import adapt_tasks, broadcast, task_losses

__all__ = ["Reptile"]


class Reptile(FastWeightLearner):
    """Reptile meta-learner over fast weights of a ``PolicyNet``.

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`; here
    ``meta_lr`` is the interpolation factor toward the mean adapted weights, in ``(0, 1]`` for
    the usual behaviour (larger values are allowed and extrapolate; ``None``: 0.1).

    References
    ----------
    Nichol, A., Achiam, J. & Schulman, J. (2018). On first-order meta-learning algorithms.
    arXiv:1803.02999.
    """

    algorithm = "reptile"
    outer_step = "interpolation"
    default_meta_lr = 0.1

    def __init__(self, net: PolicyNet, *, keep_best: bool = False, **kwargs: Any) -> None:
        """``keep_best``: move toward each task's inner iterate with the least loss instead of
        its last (``adapt(..., keep_best=True)``), as a learner that serves that iterate
        adapts; a step size that overshoots then cannot drag the initialisation with it.
        The other parameters are :class:`FastWeightLearner`'s."""
        super().__init__(net, **kwargs)
        self.keep_best = bool(keep_best)

    def meta_update(self, tasks: Sequence[Task]) -> MetaStats:
        """One Reptile step from a batch of tasks; returns the batch's query losses."""
        start = time.perf_counter()
        theta = self.params
        sxs, sys_, qxs, qys = self._columns(tasks)
        n = len(sxs)
        kwargs = {
            "steps": self.inner_steps,
            "lr": self.inner_lr,
            "backend": self.backend,
            "loss": self.loss,
            "keep_best": self.keep_best,
        }

        before = task_losses(self.net, broadcast(theta, n), qxs, qys, self.loss)
        support_only = adapt_tasks(self.net, theta, sxs, sys_, **kwargs)
        after = task_losses(self.net, support_only, qxs, qys, self.loss)

        all_x = [torch.cat((sx, qx)) for sx, qx in zip(sxs, qxs, strict=True)]
        all_y = [torch.cat((sy, qy)) for sy, qy in zip(sys_, qys, strict=True)]
        adapted = adapt_tasks(self.net, theta, all_x, all_y, **kwargs)
        move = None
        if self.regularizer is not None:
            move = self.regularizer.decoupled_step(theta, self.meta_lr * self.inner_lr)
        with torch.no_grad():
            params = {k: v + self.meta_lr * (adapted[k].mean(dim=0) - v) for k, v in theta.items()}
            if move is not None:
                params = {k: v - move[k] for k, v in params.items()}
            self.params = params
        self.updates += 1
        return meta_stats(before, after, start)
