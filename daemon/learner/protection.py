"""Forgetting prevention inside the learner (torch): online EWC on the meta-learned
initialisation and on the policies of returning regimes.

``Protection`` owns an :class:`~adaptd.adapters.continual.online_ewc.OnlineEWC` and wires it
into a meta-learner:

- **Meta-training.** The learner's ``regularizer`` is the penalty
  ``lam / 2 * sum F (theta - anchor)^2``: every meta-update resists moving the initialisation
  where the running Fisher ``F`` says it mattered. After each meta round, :meth:`consolidate`
  folds the Fisher of freshly replayed episodes (sampled evenly across regimes) at the new
  initialisation into ``F`` (``F <- decay * F + F_round``) and moves the anchor there.
  Reptile applies the penalty as an explicit step of size ``s = meta_lr * inner_lr``
  (:mod:`adaptd.adapters.meta.reptile`), which overshoots the anchor and diverges once
  ``s * lam * F > 2`` (measured: NaN weights within 40 rounds at ``lam = 100``, where ``F``
  reaches 10 on the output bias). For Reptile each importance is therefore capped at
  ``1 / (s * lam)``: a coordinate that important is pulled exactly back to its anchor in one
  update, and no further. Adam's steps are bounded, so the other learners need no cap.
- **Returning regimes.** A regime that comes back is adapted from its last published policy;
  :meth:`adapt` then adds the penalty anchored at that policy, with the same ``F`` and the
  strength ``continual.policy_lambda``, so the few new examples refine what the policy knew
  instead of overwriting it. The penalised
  inner step is proximal (:class:`~adaptd.adapters.continual.proximal.ProximalStep`, the
  step hook of the learner's own inner loop): a gradient step on the support loss, then the
  exact minimiser of the step's quadratic model plus the penalty,
  ``w <- a + (w - lr * g - a) / (1 + lr * lam * F)``, which shrinks each weight's move by a
  factor in ``(0, 1]`` and so stays stable however large ``lr * lam * F`` gets (an explicit
  gradient step on the penalty diverges once that product exceeds 2).

The state (Fisher, anchor, consolidations) is checkpointed with the meta-learner's
(:mod:`adaptd.daemon.learner.policy_learner`).

Examples
--------
>>> import torch
>>> from adaptd.adapters.meta import ANIL
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.daemon.config.settings import ContinualSettings
>>> net = PolicyNet(3, (8,))
>>> learner = ANIL(net, inner_steps=3, inner_lr=0.1)
>>> protection = Protection(ContinualSettings(policy_lambda=10.0), net, learner, seed=0)
>>> learner.regularizer is not None, protection.consolidations
(True, 0)
>>> g = torch.Generator().manual_seed(0)
>>> x, y = torch.randn(64, 3, generator=g), torch.randn(64, generator=g)
>>> protection.consolidate(x, y)
True
>>> start = {k: v + 0.1 for k, v in learner.params.items()}
>>> free = learner.adapt(x[:16], y[:16], start=start)
>>> held = protection.adapt(x[:16], y[:16], start=start)
>>> distance = lambda p: sum(float((p[k] - start[k]).pow(2).sum()) for k in start)
>>> distance(held.params) < distance(free.params)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from adaptd.adapters.continual.importance import quadratic_penalty
from adaptd.adapters.continual.online_ewc import OnlineEWC
from adaptd.adapters.continual.protocol import ContinualModel
from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.fast_weights import AdaptResult
from adaptd.adapters.meta.base import FastWeightLearner
from adaptd.adapters.meta.reptile import Reptile
from adaptd.adapters.network import PolicyNet

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
    net, learner
        The policy network and the meta-learner to protect (its ``regularizer`` is set here).
    seed
        Seed of the Fisher's example subsets.
    """

    def __init__(
        self,
        settings: ContinualSettings,
        net: PolicyNet,
        learner: FastWeightLearner,
        seed: int = 0,
    ) -> None:
        self.settings = settings
        self.net = net
        self.learner = learner
        self.seed = seed
        self.ewc: OnlineEWC | None = self._fresh_ewc()
        if self.ewc is not None:
            learner.regularizer = self.penalty

    def _fresh_ewc(self) -> OnlineEWC | None:
        if self.settings.penalty != "online_ewc":
            return None
        return OnlineEWC(
            lam=self.settings.ewc_lambda,
            decay=self.settings.ewc_decay,
            fisher="empirical",
            max_examples=FISHER_MAX_EXAMPLES,
            seed=self.seed,
        )

    @property
    def consolidations(self) -> int:
        """Meta rounds folded into the running Fisher so far."""
        return 0 if self.ewc is None else self.ewc.tasks_seen

    def penalty(self, params: Mapping[str, Tensor]) -> Tensor | None:
        """``lam / 2 * sum F (params - anchor)^2`` (for Reptile with ``F`` capped, see the
        module docstring); None before the first consolidation."""
        if self.ewc is None:
            return None
        if isinstance(self.learner, Reptile):
            fisher, anchor = self.ewc.fisher, self.ewc.anchor
            if fisher is None or anchor is None or self.ewc.lam == 0:
                return None
            cap = 1.0 / (self.learner.meta_lr * self.learner.inner_lr * self.ewc.lam)
            capped = {k: f.clamp(max=cap) for k, f in fisher.items()}
            return self.ewc.lam / 2 * quadratic_penalty(params, anchor, capped)
        model = ContinualModel(self.net, dict(params), loss=self.learner.loss)
        # Online EWC's penalty is a function of the weights alone: no batch, no task needed.
        return self.ewc.penalty(model, params, None, None, None)  # type: ignore[arg-type]

    def consolidate(self, x: Tensor, y: Tensor) -> bool:
        """Fold the Fisher of ``(x, y)`` at the learner's current initialisation into the
        running one and anchor there; False (nothing done) without a penalty or data."""
        if self.ewc is None or len(y) == 0:
            return False
        model = ContinualModel(self.net, self.learner.params, loss=self.learner.loss)
        self.ewc.consolidate(model, x, y)
        return True

    def adapt(
        self,
        x: Tensor,
        y: Tensor,
        *,
        start: Mapping[str, Tensor] | None,
        deadline_s: float | None = None,
    ) -> AdaptResult:
        """The learner's adaptation of ``(x, y)`` from ``start``; when ``start`` is given (a
        returning regime's policy) and a Fisher exists, with the penalty anchored at
        ``start`` (proximal steps, see the module docstring)."""
        fisher = None if self.ewc is None else self.ewc.fisher
        if start is None or fisher is None or self.settings.policy_lambda == 0:
            return self.learner.adapt(x, y, deadline_s=deadline_s, start=start)
        step = ProximalStep(start, fisher, self.settings.policy_lambda)
        return self.learner.adapt(x, y, deadline_s=deadline_s, start=start, step=step)

    def state_dict(self) -> dict[str, Any] | None:
        """The online-EWC state (Fisher, anchor, consolidations); None without a penalty."""
        return None if self.ewc is None else self.ewc.state_dict()

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore :meth:`state_dict` output; ``None`` (a checkpoint from before the penalty,
        or written without one) starts the penalty afresh. A state is ignored when the
        penalty is off."""
        if self.ewc is None:
            return
        if state is None:
            self.ewc = self._fresh_ewc()
            return
        self.ewc.load_state_dict(state)
