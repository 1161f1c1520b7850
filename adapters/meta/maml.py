"""MAML (Finn, Abbeel & Levine, 2017) with the second-order meta-gradient.

For each task, ``inner_steps`` gradient steps of size ``inner_lr`` on the support set take the
initialisation ``θ`` to ``φ_i(θ)``; the meta-objective is the mean query loss at the adapted
weights, ``J(θ) = mean_i L_query,i(φ_i(θ))``, and Adam steps on its exact gradient, which
differentiates through every inner step (Hessian-vector products, ``create_graph=True``).

The whole meta-batch is one batched computation: stacked weights and ``torch.baddbmm`` with
the "autograd" backend (the fast path), ``torch.func.vmap`` over ``torch.func.grad`` with
"func". Measured on the MAML sinusoid protocol (meta-batch 25, K = 10 support + 10 query,
``PolicyNet(1, (40, 40), "relu")``, inner step 0.01, one thread, 2-core machine; median
milliseconds per meta-iteration, same process), against a hand-batched reference (stacked raw
tensors, ``torch.baddbmm``, one autograd call on the sum of task losses, ``torch.optim.Adam``):

==========================  ==============  ==============
                            1 inner step    5 inner steps
==========================  ==============  ==============
hand-batched reference      1.6             5.7
MAML, "autograd"            2.0             6.4
MAML, "func"                3.0             11.2
==========================  ==============  ==============

The remaining gap to the reference is the extra work a meta-update does for its statistics
(the query loss before adaptation) and the task checks.

Examples
--------
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> tasks = SinusoidTasks(seed=0).sample(4, k_support=10, k_query=10)
>>> learner = MAML(PolicyNet(1, (40, 40)), inner_steps=2, inner_lr=0.01, meta_lr=1e-3)
>>> stats = learner.meta_update(tasks)
>>> stats.tasks, learner.updates, learner.second_order
(4, 1, True)
>>> stats.query_loss_after < stats.query_loss_before
True


References
----------
Finn, C., Abbeel, P. & Levine, S. (2017). Model-agnostic meta-learning for fast adaptation of
deep networks. ICML.
"""

from __future__ import annotations

from .gradient_based import GradientLearner

__all__ = ["MAML"]


class MAML(GradientLearner):
    """Second-order MAML over fast weights of a ``PolicyNet``, with Adam outside.

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`; here
    ``meta_lr`` is Adam's step size (betas 0.9, 0.999; eps 1e-8; ``None``: 1e-3).
    """

    algorithm = "maml"
