"""Forgetting prevention inside the learner (torch): online EWC on the meta-learned
initialisation and on the policies of returning regimes.

``Protection`` owns an :class:`~adaptd.adapters.continual.online_ewc.OnlineEWC` and the
meta-learner's regularizer built on it, before the learner exists:

- **Meta-training.** The meta-learner is constructed with ``regularizer`` (an
  :class:`~adaptd.adapters.continual.anchored_regularizer.AnchoredRegularizer`), the penalty
  ``lam / 2 * sum F (theta - anchor)^2``: every meta-update resists moving the initialisation
  where the running Fisher ``F`` says it mattered. After each meta round, :meth:`consolidate`
  folds the Fisher of freshly replayed episodes (sampled evenly across regimes) at the new
  initialisation into ``F`` (``F <- decay * F + F_round``) and moves the anchor there.
  Reptile applies the penalty as an explicit step, which the regularizer bounds by capping
  each importance (its module docstring says why and by how much).
- **Returning regimes.** A regime that comes back is adapted from its last published policy;
  :meth:`adapt` then adds the penalty anchored at that policy, with the same ``F`` and the
  strength ``continual.policy_lambda``, so the few new examples refine what the policy knew
  instead of overwriting it. The penalised inner step is proximal
  (:class:`~adaptd.adapters.continual.proximal.ProximalStep`, the step hook of the learner's
  own inner loop): a gradient step on the support loss, then the exact minimiser of the step's
  quadratic model plus the penalty, ``w <- a + (w - lr * g - a) / (1 + lr * lam * F)``, which
  shrinks each weight's move by a factor in ``(0, 1]`` and so stays stable however large
  ``lr * lam * F`` gets (an explicit gradient step on the penalty diverges once that product
  exceeds 2).

The state (Fisher, anchor, consolidations) is checkpointed with the meta-learner's
(:mod:`adaptd.daemon.learner.policy_learner`).

Examples
--------
>>> import torch
>>> from adaptd.adapters.meta import ANIL
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.daemon.config.settings import ContinualSettings
>>> net = PolicyNet(3, (8,))
>>> protection = Protection(ContinualSettings(policy_lambda=10.0), net, seed=0)
>>> learner = ANIL(net, inner_steps=3, inner_lr=0.1, regularizer=protection.regularizer)
>>> learner.regularizer is not None, protection.consolidations
(True, 0)
>>> g = torch.Generator().manual_seed(0)
>>> x, y = torch.randn(64, 3, generator=g), torch.randn(64, generator=g)
>>> protection.consolidate(learner.params, x, y)
True
>>> start = {k: v + 0.1 for k, v in learner.params.items()}
>>> free = learner.adapt(x[:16], y[:16], start=start)
>>> held = protection.adapt(learner, x[:16], y[:16], start=start)
>>> distance = lambda p: sum(float((p[k] - start[k]).pow(2).sum()) for k in start)
>>> distance(held.params) < distance(free.params)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from adaptd.adapters.continual.anchored_regularizer import AnchoredRegularizer
from adaptd.adapters.continual.online_ewc import OnlineEWC
from adaptd.adapters.continual.protocol import ContinualModel
from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.fast_weights import AdaptResult
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Loss, MetaLearner
from adaptd.adapters.steps import SGD_STEP, InnerStep

from ..config.settings import ContinualSettings

__all__ = ["FISHER_MAX_EXAMPLES", "Protection"]

FISHER_MAX_EXAMPLES = 4096
"""Most examples one consolidation's Fisher is computed from (a seeded random subset)."""


class Protection:
    """Online EWC for a meta-learner's initialisation and for warm-started adaptations.

    Parameters
    ----------
    settings
        The ``continual`` section; ``penalty="none"`` makes every method a no-op (plain
        adaptation, no regularizer, no state).
    net
        The policy network.
    seed
        Seed of the Fisher's example subsets.
    loss
        The policy's loss, which the Fisher is the curvature of.
    """

    def __init__(
        self,
        settings: ContinualSettings,
        net: PolicyNet,
        seed: int = 0,
        loss: Loss = "mse",
    ) -> None:
        self.settings = settings
        self.net = net
        self.seed = seed
        self.loss: Loss = loss
        self.ewc: OnlineEWC | None = None
        self.regularizer: AnchoredRegularizer | None = None
        """The meta-learner's ``regularizer`` (None without a penalty): give it to the
        learner's constructor."""
        if settings.penalty == "online_ewc":
            self.ewc = OnlineEWC(
                lam=settings.ewc_lambda,
                decay=settings.ewc_decay,
                fisher="empirical",
                max_examples=FISHER_MAX_EXAMPLES,
                seed=seed,
            )
            self.regularizer = AnchoredRegularizer(self.ewc)

    @property
    def consolidations(self) -> int:
        """Meta rounds folded into the running Fisher so far."""
        return 0 if self.ewc is None else self.ewc.tasks_seen

    def consolidate(self, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> bool:
        """Fold the Fisher of ``(x, y)`` at ``params`` (the learner's current initialisation)
        into the running one and anchor there; False (nothing done) without a penalty or
        data."""
        if self.ewc is None or len(y) == 0:
            return False
        self.ewc.consolidate(ContinualModel(self.net, dict(params), loss=self.loss), x, y)
        return True

    def adapt(
        self,
        learner: MetaLearner,
        x: Tensor,
        y: Tensor,
        *,
        start: Mapping[str, Tensor] | None,
        deadline_s: float | None = None,
    ) -> AdaptResult:
        """``learner``'s adaptation of ``(x, y)`` from ``start``; when ``start`` is given (a
        returning regime's policy) and a Fisher exists, with the penalty anchored at
        ``start`` (proximal steps, see the module docstring)."""
        return learner.adapt(x, y, deadline_s=deadline_s, start=start, step=self.step(start))

    def step(self, start: Mapping[str, Tensor] | None) -> InnerStep:
        """The inner step of an adaptation from ``start``: proximal, anchored at ``start``,
        when it is given (a returning regime's policy) and a Fisher exists; plain gradient
        descent otherwise. The caller may wrap it (a trust region projects its result)."""
        fisher = None if self.ewc is None else self.ewc.fisher
        if start is None or fisher is None or self.settings.policy_lambda == 0:
            return SGD_STEP
        return ProximalStep(start, fisher, self.settings.policy_lambda)

    def state_dict(self) -> dict[str, Any] | None:
        """The online-EWC state (Fisher, anchor, consolidations); None without a penalty."""
        return None if self.ewc is None else self.ewc.state_dict()

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore :meth:`state_dict` output; ``None`` (a checkpoint from before the penalty,
        or written without one) starts the penalty afresh. A state is ignored when the
        penalty is off."""
        if self.ewc is None:
            return
        # An empty state (no Fisher, no anchor) resets the one penalty the learner's
        # regularizer reads, rather than replacing it behind the learner's back.
        self.ewc.load_state_dict({"name": self.ewc.name} if state is None else state)
