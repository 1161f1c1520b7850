"""The strategy task on Hedge: the names of Hedge's log-weights among a policy's inputs, Hedge
as the task's baseline, and the words a policy message defines Hedge with.

With ``ensemble="hedge"`` (:class:`~.selection.StrategyTask`) the stream runs Hedge over the
strategies' one-event rewards (:mod:`adaptd.daemon.core.hedge`), the label rule appends its
log-weights to every example's features, and the network adds those last inputs to its logits
(the head's ``skip``). A network that outputs 0 then serves Hedge, which is the baseline.

>>> import numpy as np
>>> x = np.log([[0.5, 0.25, 0.25]])   # Hedge's weights, as the inputs carry them
>>> HedgeEnsemble(3).losses(np.array([0.0]), x).round(4).tolist()  # -log 0.5
[0.6931]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..hedge import LOG_WEIGHT_FLOOR

__all__ = ["HedgeEnsemble", "cross_entropy", "hedge_definition", "hedge_inputs"]


def hedge_inputs(strategies: Sequence[str]) -> tuple[str, ...]:
    """The input names of Hedge's log-weights, one a strategy.

    >>> hedge_inputs(("flat", "long"))
    ('hedge_log_w_flat', 'hedge_log_w_long')
    """
    return tuple(f"hedge_log_w_{name}" for name in strategies)


class HedgeEnsemble:
    """Hedge's weights as the forecast: the network that outputs 0, whose logits are the
    log-weights its last inputs carry (the rule's ``extra``). Its cross-entropy needs those
    inputs, so it reads them (``reads_inputs``)."""

    name = "Hedge ensemble"
    constant_output = 0.0
    reads_inputs = True

    def __init__(self, classes: int) -> None:
        self.classes = classes

    def losses(self, y: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        if x is None:
            raise ValueError("the Hedge ensemble's losses need the examples' inputs")
        return cross_entropy(np.asarray(x)[:, -self.classes :], y)


def cross_entropy(output: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy of logits ``(n, k)`` against class ids ``y``."""
    z = np.asarray(output, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(z)), np.asarray(y, dtype=np.int64)]


def hedge_definition(
    eta: float, discount: float, clip: float, penalty: float, inputs: Sequence[str]
) -> dict[str, Any]:
    """The message's ``task.hedge``: Hedge's parameters, its input names and its update."""
    return {
        "eta": eta,
        "discount": discount,
        "clip": clip,
        "penalty": penalty,
        "floor": LOG_WEIGHT_FLOOR,
        "inputs": list(inputs),
        "definition": (
            "after each event t >= 1: S_k = discount * S_k + clip(u_k, -clip, clip), "
            "u_k = (p_k(t-1) (lp_t - lp_(t-1)) - c |p_k(t-1) - p_k(t-2)| - "
            "penalty max(-p_k(t-1) (lp_t - lp_(t-1)), 0)) / vol_(t-1); "
            "S starts at 0 at the first feature event, positions before it are 0; "
            "input k = max(eta S_k - log sum_j exp(eta S_j), floor), the last inputs of "
            "the network, which adds them to its outputs (architecture.skip)"
        ),
    }
