"""Adam on a dict of tensors, functional: every step returns new tensors.

The learners never modify their ``params`` in place (a dict read earlier stays a valid
snapshot), so ``torch.optim.Adam``, which updates leaves in place, is replaced by the same
update written out. It follows ``torch.optim.Adam`` with default options (no weight decay,
no amsgrad), which a test checks step by step.

Examples
--------
>>> import torch
>>> adam = Adam(lr=0.1)
>>> theta = {"w": torch.tensor([1.0, -1.0])}
>>> theta = adam.step(theta, {"w": torch.tensor([2.0, -0.5])})
>>> theta["w"]
tensor([ 0.9000, -0.9000])
>>> adam.t
1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["Adam"]


class Adam:
    """Adam with bias correction (Kingma & Ba, 2015), as ``torch.optim.Adam`` computes it.

    Parameters
    ----------
    lr
        Step size.
    betas
        Decay rates of the first and second moment estimates.
    eps
        Added to the root of the second moment estimate.
    """

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self._reset()

    def _reset(self) -> None:
        self.t = 0
        self.exp_avg: dict[str, Tensor] = {}
        self.exp_avg_sq: dict[str, Tensor] = {}

    def step(self, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """New parameters after one Adam step with ``grads``; ``params`` are not modified."""
        beta1, beta2 = self.betas
        self.t += 1
        correction1 = 1.0 - beta1**self.t
        correction2_sqrt = math.sqrt(1.0 - beta2**self.t)
        out: dict[str, Tensor] = {}
        with torch.no_grad():
            for name, value in params.items():
                g = grads[name]
                m = self.exp_avg.get(name, torch.zeros_like(value))
                v = self.exp_avg_sq.get(name, torch.zeros_like(value))
                m = beta1 * m + (1.0 - beta1) * g
                v = beta2 * v + (1.0 - beta2) * g * g
                self.exp_avg[name] = m
                self.exp_avg_sq[name] = v
                denom = v.sqrt() / correction2_sqrt + self.eps
                out[name] = value - (self.lr / correction1) * m / denom
        return out

    def state_dict(self) -> dict[str, Any]:
        """Step count and moment estimates (copies)."""
        return {
            "t": self.t,
            "exp_avg": {k: v.clone() for k, v in self.exp_avg.items()},
            "exp_avg_sq": {k: v.clone() for k, v in self.exp_avg_sq.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()`` output."""
        try:
            t = int(state["t"])
            exp_avg = {k: v.detach().clone() for k, v in state["exp_avg"].items()}
            exp_avg_sq = {k: v.detach().clone() for k, v in state["exp_avg_sq"].items()}
        except (KeyError, AttributeError, TypeError) as exc:
            raise ValueError(f"not an Adam state: {exc!r}") from exc
        if t < 0 or set(exp_avg) != set(exp_avg_sq):
            raise ValueError(f"inconsistent Adam state: t={t}, keys differ or t negative")
        self.t, self.exp_avg, self.exp_avg_sq = t, exp_avg, exp_avg_sq
