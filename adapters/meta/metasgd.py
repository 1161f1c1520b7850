"""Meta-SGD (Li, Zhou, Chen & Li, 2017): MAML that also learns the inner loop's step sizes, one
per parameter entry, optionally one set per inner step.

The inner step is ``φ = θ − α ∘ ∇L_support(θ)`` with ``α`` a tensor of the same shape as each
parameter (initialised to ``inner_lr``; entries may turn negative, as in the paper). ``θ`` and
``α`` are both meta-learned by Adam on the second-order meta-gradient of the query loss after
adaptation; ``adapt`` uses the learned ``α``. ``meta_parameters()`` returns ``params`` plus
``α`` under the names ``step_size.<parameter name>``.

With ``per_step=True`` the step sizes form a learned schedule: step ``i`` of the inner loop
uses its own ``α_i`` (named ``step_size.<i>.<parameter name>``), as in the learned per-step
learning rates of MAML++ (Antoniou, Edwards & Storkey, 2019), which learns one rate per layer
and step; here each step keeps Meta-SGD's one rate per parameter entry. An ``adapt`` with more
steps than ``inner_steps`` reuses the last step's ``α`` for the extra steps: those are the
rates trained for weights nearest the extra steps' (already adapted ones); with fewer steps,
the first ones are used.

Examples
--------
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> learner = MetaSGD(PolicyNet(1, (8,)), inner_steps=1, inner_lr=0.01, meta_lr=1e-2, seed=0)
>>> sorted(learner.meta_parameters())[-2:]
['step_size.layers.2.bias', 'step_size.layers.2.weight']
>>> stats = learner.meta_update(SinusoidTasks(seed=3).sample(2, k_support=5, k_query=5))
>>> float(learner.alpha["layers.2.bias"]) != 0.01
True
>>> schedule = MetaSGD(PolicyNet(1, (8,)), inner_steps=2, per_step=True)
>>> len(schedule.alpha), sorted(schedule.meta_parameters())[-1]
(2, 'step_size.1.layers.2.weight')


References
----------
Li, Z., Zhou, F., Chen, F. & Li, H. (2017). Meta-SGD: learning to learn quickly for few-shot
learning. arXiv:1707.09835.

Antoniou, A., Edwards, H. & Storkey, A. (2019). How to train your MAML. ICLR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import torch
from torch import Tensor

from ..checks import flag
from ..fast_weights import Params, StepSchedule, copy_params_like
from ..network import PolicyNet
from .base import LearnerOptions
from .gradient_based import GradientLearner

__all__ = ["STEP_SIZE_PREFIX", "MetaSGD"]

STEP_SIZE_PREFIX = "step_size."
"""Prefix of the step sizes' names in ``meta_parameters()`` (parameter names never have it)."""


class MetaSGD(GradientLearner):
    """Meta-SGD over fast weights of a ``PolicyNet``: learned initialisation and step sizes
    (and, with ``per_step``, a learned step-size schedule).

    Takes the parameters of :class:`~adaptd.adapters.meta.base.FastWeightLearner`, with
    ``inner_lr`` the initial value of every learned step size and ``meta_lr`` Adam's step size
    for ``params`` and ``alpha`` (``None``: 1e-3), and:

    Parameters
    ----------
    per_step
        Learn separate step sizes for each of the ``inner_steps`` steps (``alpha`` is then a
        tuple of ``Params``, one a step); ``False`` shares one set across steps.
    """

    algorithm = "metasgd"
    conformance_options = ({}, {"per_step": True})

    def __init__(
        self, net: PolicyNet, *, per_step: bool = False, **options: Unpack[LearnerOptions]
    ) -> None:
        self.per_step = flag("per_step", per_step)
        super().__init__(net, **options)

    def _reset(self) -> None:
        super()._reset()
        sizes = [
            {k: torch.full_like(v, self.inner_lr) for k, v in self.params.items()}
            for _ in range(self.inner_steps if self.per_step else 1)
        ]
        self.alpha: Params | tuple[Params, ...] = self._schedule_to_alpha(sizes)
        """The learned step sizes, keyed and shaped like ``params``: one ``Params``, or with
        ``per_step`` a tuple of them, one an inner step."""

    def step_sizes(self) -> StepSchedule:
        """The learned step sizes ``alpha``: per parameter, or per step and parameter."""
        return self.alpha

    def meta_parameters(self) -> dict[str, Tensor]:
        """``params`` and ``alpha`` (as ``step_size.<name>``, or ``step_size.<step>.<name>``
        with ``per_step``); the learner's own tensors."""
        sizes = self._alpha_schedule()
        return {**self.params, **{name: sizes[i][k] for name, i, k in self._step_size_names()}}

    def _step_size_names(self) -> list[tuple[str, int, str]]:
        """``(meta-parameter name, step, parameter name)`` of every step-size tensor."""
        if not self.per_step:
            return [(STEP_SIZE_PREFIX + k, 0, k) for k in self.params]
        return [
            (f"{STEP_SIZE_PREFIX}{i}.{k}", i, k)
            for i in range(self.inner_steps)
            for k in self.params
        ]

    def _alpha_schedule(self) -> list[Params]:
        return list(self.alpha) if isinstance(self.alpha, tuple) else [self.alpha]

    def _schedule_to_alpha(self, sizes: list[Params]) -> Params | tuple[Params, ...]:
        return tuple(sizes) if self.per_step else sizes[0]

    def _differentiable_step_sizes(self, meta: Mapping[str, Tensor]) -> StepSchedule:
        return self._schedule_to_alpha(self._sizes_from(meta))

    def _sizes_from(self, values: Mapping[str, Tensor]) -> list[Params]:
        sizes: list[Params] = [{} for _ in range(self.inner_steps if self.per_step else 1)]
        for name, i, k in self._step_size_names():
            sizes[i][k] = values[name]
        return sizes

    def _set_meta_parameters(self, values: Mapping[str, Tensor]) -> None:
        super()._set_meta_parameters(values)
        self.alpha = self._schedule_to_alpha(self._sizes_from(values))

    def _extra_state(self) -> dict[str, Any]:
        sizes = [{k: v.clone() for k, v in alpha.items()} for alpha in self._alpha_schedule()]
        return {**super()._extra_state(), "alpha": self._schedule_to_alpha(sizes)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        alpha = state.get("alpha")
        if self.per_step:
            if not isinstance(alpha, tuple | list) or len(alpha) != self.inner_steps:
                raise ValueError(
                    f"MetaSGD(per_step=True) state needs 'alpha' as {self.inner_steps} step "
                    "sizes, one set an inner step"
                )
            sizes = list(alpha)
        else:
            sizes = [alpha]
        copies = [
            copy_params_like(
                step, self.params, f"state alpha[{i}]" if self.per_step else "state alpha"
            )
            for i, step in enumerate(sizes)
        ]
        super()._load_extra_state(state)
        self.alpha = self._schedule_to_alpha(copies)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, per_step={self.per_step})"
