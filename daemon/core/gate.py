"""The publication gate: a worse policy is never published.

An adapted policy is published only when its mean loss on the held-out query examples (which
the adaptation never saw) undercuts the live policy's by more than ``min_improvement`` plus
``z`` standard errors of the paired per-example difference: a query set of eight examples is
noisy, and a policy that wins by chance would replace a better one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["passes_gate"]


def passes_gate(
    loss_current: np.ndarray, loss_adapted: np.ndarray, min_improvement: float, z: float
) -> bool:
    """True when the adapted policy's per-example query losses beat the current policy's.

    >>> passes_gate(np.array([1.0, 1.2, 0.9]), np.array([0.5, 0.7, 0.4]), 0.0, 1.0)
    True
    >>> passes_gate(np.array([1.0, 0.2, 0.9]), np.array([0.5, 0.9, 0.4]), 0.0, 1.0)
    False
    """
    diff = np.asarray(loss_current, dtype=np.float64) - np.asarray(loss_adapted, np.float64)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()) > min_improvement + z * se
