"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio & Vinyals, 2020): MAML whose inner loop
adapts only the head (the output layer); the outer loop still learns every layer.

The meta-gradient is second-order through the head's adaptation and reaches the body through
the features the head is adapted on. It is cheap: with the "autograd" backend the body runs
once per task for the support and once for the query set, and the inner loop is a batched
linear (or softmax) regression on those features.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> learner = ANIL(PolicyNet(1, (8,)), inner_steps=3, inner_lr=0.01, meta_lr=1e-2, seed=0)
>>> learner.inner_names
('layers.2.weight', 'layers.2.bias')
>>> stats = learner.meta_update(SinusoidTasks(seed=2).sample(2, k_support=5, k_query=5))
>>> adapted = learner.adapt(torch.ones(4, 1), torch.ones(4)).params
>>> torch.equal(adapted["layers.0.weight"], learner.params["layers.0.weight"])
True


References
----------
Raghu, A., Raghu, M., Bengio, S. & Vinyals, O. (2020). Rapid learning or feature reuse?
Towards understanding the effectiveness of MAML. ICLR.
"""

from __future__ import annotations

from .gradient_based import GradientLearner

__all__ = ["ANIL"]


class ANIL(GradientLearner):
    """MAML with a head-only inner loop, over fast weights of a ``PolicyNet``, Adam outside.

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`; here the
    inner loop adapts the head (the net's last linear layer) only, ``meta_lr`` is the step
    size of Adam over all parameters (``None``: 1e-3), and the "autograd" backend runs stacked
    head weights on features computed once ("func" runs ``vmap`` over the whole network).
    """

    algorithm = "anil"

    @property
    def inner_names(self) -> tuple[str, ...]:
        """The head's weight and bias."""
        return (f"{self.net.head}.weight", f"{self.net.head}.bias")
