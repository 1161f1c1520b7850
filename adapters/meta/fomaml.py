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
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> learner = FOMAML(PolicyNet(1, (40, 40)), inner_steps=2, inner_lr=0.01, meta_lr=1e-3)
>>> stats = learner.meta_update(SinusoidTasks(seed=1).sample(3, k_support=5, k_query=5))
>>> stats.tasks, learner.updates, learner.state_dict()["adam"]["t"]
(3, 1, 1)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..fast_weights import Params
from ..protocol import MetaStats, Task
from .base import meta_stats
from .batched import adapt_tasks, broadcast, task_grads, task_losses
from .gradient_based import GradientLearner

__all__ = ["FOMAML"]


class FOMAML(GradientLearner):
    """First-order MAML meta-learner over fast weights of a ``PolicyNet``, with Adam outside.

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`; here
    ``meta_lr`` is Adam's step size (betas 0.9, 0.999; eps 1e-8; ``None``: 1e-3).

    References
    ----------
    Finn, C., Abbeel, P. & Levine, S. (2017). Model-agnostic meta-learning for fast adaptation
    of deep networks. ICML, section 5.2.
    """

    algorithm = "fomaml"
    second_order = False

    def meta_gradient(self, tasks: Sequence[Task]) -> tuple[Params, MetaStats]:
        """The first-order meta-gradient ``mean_i ∇_φ L_query,i(φ_i)`` at the current ``params``,
        with the batch's statistics; ``params`` are left unchanged."""
        start = time.perf_counter()
        theta = self.params
        sxs, sys_, qxs, qys = self._columns(tasks)
        n = len(sxs)
        before = task_losses(self.net, broadcast(theta, n), qxs, qys, self.loss)
        adapted = adapt_tasks(
            self.net,
            theta,
            sxs,
            sys_,
            steps=self.inner_steps,
            lr=self.inner_lr,
            backend=self.backend,
            loss=self.loss,
        )
        grads, after = task_grads(self.net, adapted, qxs, qys, backend=self.backend, loss=self.loss)
        meta_grad = {k: g.mean(dim=0) for k, g in grads.items()}
        return meta_grad, meta_stats(before, after, start)
