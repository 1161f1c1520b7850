"""Continuous validation: a live policy is retired as soon as it is known to lose to its
task's baseline.

Every example a live policy scores prequentially is scored by the task's baseline too
(:mod:`.prequential`); the :class:`Validator` accumulates the paired loss differences
``d = loss(policy) - loss(baseline)`` of the policy's examples. It retires the policy when,
after at least ``min_examples``, the mean difference is positive and

- exceeds ``z`` standard errors (the mean test), or
- the policy lost on more of its examples than a fair coin would give, by ``z`` standard
  errors of the binomial (the sign test).

Either way the policy is worse than doing nothing clever. The test is repeated after every
batch, so a policy that is exactly as good as its baseline is retired sooner or later at any
``z``; that costs little (the baseline serves, and the next adaptation is the next
challenger), while a policy that loses and stays live costs every subscriber. The default
``z = 1`` was chosen on the market series' development split with the publication gate
opened (at 3 losing risk policies stayed live for hundreds of events, at 2 for tens). The
sign test is there
for heavy-tailed losses: a variance forecast biased far low loses a little on almost every
example, but QLIKE's few huge losses inflate the standard error so much that the mean test
would take hundreds of examples to see it. A retired policy is replaced by
the baseline itself (:meth:`~.tasks.protocol.Baseline.output` as a network that outputs
it): the daemon publishes that, with the reason, and a later adaptation is the next
challenger. A subscriber is never left on a policy the daemon knows is losing.

>>> v = Validator(ValidationParams(z=2.0, min_examples=4))
>>> v.watch(7)
>>> v.update(np.array([1.0, 1.2, 0.9]), np.array([0.5, 0.4, 0.6])) is None  # too few
True
>>> verdict = v.update(np.array([1.1, 1.0]), np.array([0.5, 0.5]))
>>> verdict.version, verdict.examples, round(verdict.excess, 2)
(7, 5, 0.54)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "DEFAULT_VALIDATION",
    "Retirement",
    "ValidationParams",
    "Validator",
    "constant_weights",
]


class ValidationParams(NamedTuple):
    """How sure the validator must be before it retires a policy."""

    enabled: bool = True
    z: float = 1.0
    """Standard errors by which the policy's mean loss must exceed the baseline's."""
    min_examples: int = 30
    """Examples of the policy scored before any verdict."""


DEFAULT_VALIDATION = ValidationParams()


class Retirement(NamedTuple):
    """A live policy that lost to its baseline."""

    version: int
    examples: int
    excess: float
    """Its mean loss minus the baseline's, over those examples."""
    standard_error: float
    worse: int = -1
    """Examples on which it lost, when the sign test retired it (-1: the mean test did)."""

    def reason(self, baseline: str) -> str:
        if self.worse >= 0:
            n = self.examples
            z = (self.worse - n / 2) / math.sqrt(n / 4)
            return (
                f"version {self.version} lost to the {baseline} on {self.worse} of {n} "
                f"examples ({z:.1f} standard errors above a coin), mean loss "
                f"{self.excess:.4g} above it"
            )
        se = self.standard_error
        z = self.excess / se if se > 0.0 else math.inf
        return (
            f"version {self.version} lost to the {baseline}: mean loss {self.excess:.4g} "
            f"above it over {self.examples} examples ({z:.1f} standard errors)"
        )


class Validator:
    """The sequential test of one (stream, task)'s live policy against its baseline."""

    __slots__ = ("n", "params", "sum", "sumsq", "version", "worse")

    def __init__(self, params: ValidationParams) -> None:
        self.params = params
        self.version = 0
        """The policy version under test (0: none)."""
        self.n = 0
        self.sum = 0.0
        self.sumsq = 0.0
        self.worse = 0
        """Examples on which the policy lost."""

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        # Validators snapshotted before the sign test count the losses from then on.
        self.worse = 0
        for name, value in state[1].items():
            setattr(self, name, value)

    def watch(self, version: int) -> None:
        """Start testing a newly live policy ``version`` (0: stop testing)."""
        self.version = version
        self.n, self.sum, self.sumsq, self.worse = 0, 0.0, 0.0, 0

    def update(self, policy: np.ndarray, baseline: np.ndarray) -> Retirement | None:
        """Add the policy's and the baseline's per-example losses on the same examples; a
        :class:`Retirement` when the policy is now known to be worse (then testing stops)."""
        if not self.version or not self.params.enabled:
            return None
        d = np.asarray(policy, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
        self.n += len(d)
        self.sum += float(d.sum())
        self.sumsq += float(d @ d)
        self.worse += int((d > 0.0).sum())
        n = self.n
        if n < max(self.params.min_examples, 2):
            return None
        mean = self.sum / n
        if not mean > 0.0:
            return None
        var = max(self.sumsq / n - mean * mean, 0.0) * n / (n - 1)
        se = math.sqrt(var / n)
        z = self.params.z
        verdict = None
        if mean > z * se:
            verdict = Retirement(self.version, n, mean, se)
        elif self.worse - n / 2 > z * math.sqrt(n / 4):
            verdict = Retirement(self.version, n, mean, se, worse=self.worse)
        if verdict is not None:
            self.watch(0)
        return verdict


def constant_weights(like: dict[str, np.ndarray], output: float) -> dict[str, np.ndarray]:
    """Weights of ``like``'s network that output ``output`` whatever the input: every weight
    and bias 0 but the last layer's biases (``layers.<last>.bias``).

    >>> w = constant_weights({"layers.0.weight": np.ones((2, 3)), "layers.0.bias": np.ones(2),
    ...                       "layers.2.weight": np.ones((1, 2)), "layers.2.bias": np.ones(1)}, 0.5)
    >>> float(w["layers.0.weight"].sum()), w["layers.2.bias"].tolist()
    (0.0, [0.5])
    """
    last = max(int(k.split(".")[1]) for k in like)
    out = {k: np.zeros_like(v) for k, v in like.items()}
    out[f"layers.{last}.bias"] = np.full_like(like[f"layers.{last}.bias"], output)
    return out
