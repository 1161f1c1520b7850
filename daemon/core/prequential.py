"""Prequential (test-then-train) scores of one (stream, task).

Every labelled example is scored, when its label arrives, by the policy live at that moment
(which never trained on it), by the meta-learned initialisation without adaptation, and by
the task's baseline; the sums of the three per-example losses and the count feed reports, and
the live policy's per-example losses feed the detectors' error channel. Nothing is scored
while no policy exists at all; the baseline still sees every label, in order.

>>> from adaptd.adapters.serving import NumpyPolicy
>>> from adaptd.daemon.core.tasks.returns import ReturnTask
>>> task = ReturnTask(horizon=1, clip=10.0)
>>> zero = NumpyPolicy([(np.zeros((1, 2)), np.zeros(1))])
>>> scores = Prequential(task.baseline())
>>> x, y = np.zeros((2, 2), dtype=np.float32), np.array([1.0, -2.0], dtype=np.float32)
>>> scores.score(task, x, y, live=None, init=zero).tolist()
[1.0, 4.0]
>>> scores.mean()
(2.5, 2.5, 2.5, 2)
"""

from __future__ import annotations

import math

import numpy as np

from adaptd.adapters.serving import NumpyPolicy

from .tasks.protocol import Baseline, PolicyTask

__all__ = ["Prequential"]


class Prequential:
    """Sums of the per-example losses of the live policy, the unadapted initialisation and
    the task's baseline, and the examples scored."""

    __slots__ = ("baseline", "sums")

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.sums = [0.0, 0.0, 0.0, 0]
        """(live, initialisation, baseline) loss sums and the count."""

    def score(
        self,
        task: PolicyTask,
        x: np.ndarray,
        y: np.ndarray,
        *,
        live: NumpyPolicy | None,
        init: NumpyPolicy | None,
    ) -> np.ndarray | None:
        """Score a batch of matured examples (one vectorised forward per model); the live
        policy's per-example losses (the initialisation's while no policy is live), or None
        when there is no policy at all."""
        scored = self.score_pair(task, x, y, live=live, init=init)
        return None if scored is None else scored[0]

    def score_pair(
        self,
        task: PolicyTask,
        x: np.ndarray,
        y: np.ndarray,
        *,
        live: NumpyPolicy | None,
        init: NumpyPolicy | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """As :meth:`score`, with the baseline's per-example losses on the same examples."""
        baseline = self.baseline
        reads = getattr(baseline, "reads_inputs", False)
        base = baseline.losses(y, x) if reads else baseline.losses(y)
        policy = live or init
        if policy is None:
            return None
        losses = task.losses(policy.predict(x), y)
        sums = self.sums
        total = float(losses.sum())
        sums[0] += total
        if live is not None and init is not None:
            total = float(task.losses(init.predict(x), y).sum())
        sums[1] += total
        sums[2] += float(base.sum())
        sums[3] += len(y)
        return losses, base

    def mean(self) -> tuple[float, float, float, int]:
        """(live, initialisation, baseline) mean loss and the examples scored (NaN before
        any)."""
        live, init, base, n = self.sums
        if not n:
            return math.nan, math.nan, math.nan, 0
        return live / n, init / n, base / n, int(n)
