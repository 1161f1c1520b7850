"""First-order MAML (Finn, Abbeel & Levine, 2017, section 5.2): the query-loss gradient at the
adapted weights, applied to the initialisation.

For each task, adapt ``θ`` on the support set to ``φ_i`` (``inner_steps`` plain gradient steps),
take ``g_i = ∇_φ L_query,i(φ_i)``, and feed ``mean_i g_i`` to Adam as the gradient of ``θ``.
Dropping the Jacobian ``∂φ_i/∂θ`` (taking it as the identity) is the first-order approximation;
second-order MAML will pass ``create_graph=True`` to the inner loop instead.

The inner loop never sees the query set, so ``query_loss_after`` in the returned ``MetaStats``
is the held-out loss the update itself optimises (no extra adaptation needed).

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.protocol import Task
>>> g = torch.Generator().manual_seed(0)
>>> def task(slope):
...     x = torch.randn(16, 2, generator=g)
...     return Task(x[:12], slope * x[:12, 0], x[12:], slope * x[12:, 0])
>>> learner = FOMAML(PolicyNet(2, (8,)), inner_steps=3, inner_lr=0.1, meta_lr=1e-2, seed=0)
>>> stats = learner.meta_update([task(1.0), task(-1.0)])
>>> stats.tasks, learner.updates, learner.state_dict()["adam"]["t"]
(2, 1, 1)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..fast_weights import Backend, Params
from ..network import PolicyNet
from ..protocol import MetaStats, Task
from .adam import Adam
from .base import FastWeightLearner
from .batched import adapt_tasks, broadcast, task_grads, task_losses

__all__ = ["FOMAML"]


class FOMAML(FastWeightLearner):
    """First-order MAML meta-learner over fast weights of a ``PolicyNet``, with Adam outside.

    Parameters
    ----------
    net
        The architecture (never modified).
    inner_steps, inner_lr
        Gradient steps and step size of the inner loop, used by ``meta_update`` and ``adapt``.
    meta_lr
        Adam step size of the outer loop (betas 0.9, 0.999; eps 1e-8).
    backend
        Gradient engine of the inner loop and the query gradient, "autograd" or "func".
    seed
        Seed of the initial ``params``.
    """

    algorithm = "fomaml"

    def __init__(
        self,
        net: PolicyNet,
        *,
        inner_steps: int = 5,
        inner_lr: float = 0.05,
        meta_lr: float = 1e-3,
        backend: Backend = "autograd",
        seed: int = 0,
    ) -> None:
        super().__init__(
            net,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            meta_lr=meta_lr,
            backend=backend,
            seed=seed,
        )

    def _reset(self) -> None:
        super()._reset()
        self.optimizer = Adam(lr=self.meta_lr)

    def meta_gradient(self, tasks: Sequence[Task]) -> tuple[Params, MetaStats]:
        """The first-order meta-gradient ``mean_i ∇_φ L_query,i(φ_i)`` at the current ``params``,
        with the batch's statistics; ``params`` are left unchanged."""
        start = time.perf_counter()
        theta = self.params
        sxs, sys_, qxs, qys = self._columns(tasks)
        n = len(sxs)
        before = task_losses(self.net, broadcast(theta, n), qxs, qys)
        adapted = adapt_tasks(
            self.net,
            theta,
            sxs,
            sys_,
            steps=self.inner_steps,
            lr=self.inner_lr,
            backend=self.backend,
        )
        grads, after = task_grads(self.net, adapted, qxs, qys, backend=self.backend)
        meta_grad = {k: g.mean(dim=0) for k, g in grads.items()}
        stats = MetaStats(
            tasks=n,
            query_loss_before=float(before.mean()),
            query_loss_after=float(after.mean()),
            seconds=time.perf_counter() - start,
        )
        return meta_grad, stats

    def meta_update(self, tasks: Sequence[Task]) -> MetaStats:
        """One Adam step on the first-order meta-gradient of a batch of tasks."""
        start = time.perf_counter()
        meta_grad, stats = self.meta_gradient(tasks)
        self.params = self.optimizer.step(self.params, meta_grad)
        self.updates += 1
        return stats._replace(seconds=time.perf_counter() - start)

    def _extra_state(self) -> dict[str, Any]:
        return {"adam": self.optimizer.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        adam = state.get("adam")
        if not isinstance(adam, dict):
            raise ValueError("FOMAML state has no 'adam' optimizer state")
        unknown = set(adam.get("exp_avg", {})) - set(self.params)
        if unknown:
            raise ValueError(f"Adam state has moments for unknown params {sorted(unknown)}")
        self.optimizer.load_state_dict(adam)
