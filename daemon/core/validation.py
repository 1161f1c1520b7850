"""Continuous validation: a live policy is retired as soon as it is known to lose to its
task's baseline.

Every example a live policy scores prequentially is scored by the task's baseline too
(:mod:`.prequential`); the :class:`Validator` accumulates the paired loss differences
``d = loss(policy) - loss(baseline)`` of the policy's examples. It retires the policy when,
after at least ``min_examples``, the mean difference exceeds ``z`` standard errors: the
policy is worse than doing nothing clever, with a margin that holds up under the repeated
looks of a test made after every batch (``z = 3`` keeps a false retirement of a policy that
is as good as its baseline rare over thousands of looks). A retired policy is replaced by
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
    z: float = 3.0
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

    def reason(self, baseline: str) -> str:
        se = self.standard_error
        z = self.excess / se if se > 0.0 else math.inf
        return (
            f"version {self.version} lost to the {baseline}: mean loss {self.excess:.4g} "
            f"above it over {self.examples} examples ({z:.1f} standard errors)"
        )


class Validator:
    """The sequential test of one (stream, task)'s live policy against its baseline."""

    __slots__ = ("n", "params", "sum", "sumsq", "version")

    def __init__(self, params: ValidationParams) -> None:
        self.params = params
        self.version = 0
        """The policy version under test (0: none)."""
        self.n = 0
        self.sum = 0.0
        self.sumsq = 0.0

    def watch(self, version: int) -> None:
        """Start testing a newly live policy ``version`` (0: stop testing)."""
        self.version = version
        self.n, self.sum, self.sumsq = 0, 0.0, 0.0

    def update(self, policy: np.ndarray, baseline: np.ndarray) -> Retirement | None:
        """Add the policy's and the baseline's per-example losses on the same examples; a
        :class:`Retirement` when the policy is now known to be worse (then testing stops)."""
        if not self.version or not self.params.enabled:
            return None
        d = np.asarray(policy, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
        self.n += len(d)
        self.sum += float(d.sum())
        self.sumsq += float(d @ d)
        n = self.n
        if n < max(self.params.min_examples, 2):
            return None
        mean = self.sum / n
        var = max(self.sumsq / n - mean * mean, 0.0) * n / (n - 1)
        se = math.sqrt(var / n)
        if mean > 0.0 and mean > self.params.z * se:
            verdict = Retirement(self.version, n, mean, se)
            self.watch(0)
            return verdict
        return None


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
