"""Offline change-point detection for return series: binary segmentation, Gaussian cost.

Used by ``adaptd.adapters.tasks.market`` to cut price series into regimes where nobody
annotated change points. Pure numpy, no I/O.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> r = np.r_[rng.normal(0, 0.01, 200), rng.normal(0, 0.05, 200)]
>>> binary_segmentation(r, min_size=30)
[200]
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import int_at_least

__all__ = ["binary_segmentation"]

_FLOOR = 1e-12


def binary_segmentation(
    returns: np.ndarray,
    *,
    min_size: int = 30,
    penalty: float | None = None,
    max_changes: int = 50,
) -> list[int]:
    """Change points of a return series by binary segmentation (mean and variance, Gaussian).

    The cost of a segment of ``n`` returns is ``n · log(var)`` (``var`` its maximum-likelihood
    variance around its own mean), the Gaussian negative log-likelihood up to constants. A
    segment is split where the cost falls most, if the fall exceeds ``penalty`` and both parts
    have at least ``min_size`` returns; then each part is searched again, up to
    ``max_changes`` splits.

    Parameters
    ----------
    returns
        Finite returns (no leading nan): pass ``log_returns(price)[start + 1:end]``.
    min_size
        Shortest segment, in returns.
    penalty
        Cost reduction a split must achieve; ``None`` means ``3 · log(n)`` (BIC counts three
        parameters per change: location, mean and variance).
    max_changes
        Upper bound on the number of change points.

    Returns
    -------
    Sorted indices ``i`` into ``returns``: a new segment starts at ``returns[i]``.

    References
    ----------
    Scott, A. J. & Knott, M. (1974). A cluster analysis method for grouping means in the
    analysis of variance. Biometrics. Killick, R. & Eckley, I. (2014). changepoint: an R
    package for changepoint analysis. J. Stat. Softw.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a 1-d array of finite numbers")
    int_at_least("min_size", min_size, 2)
    if penalty is None:
        penalty = 3.0 * math.log(max(len(r), 2))
    if not (math.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"penalty must be finite and >= 0, got {penalty!r}")
    s1 = np.r_[0.0, np.cumsum(r)]
    s2 = np.r_[0.0, np.cumsum(r * r)]

    def cost(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        n = np.asarray(b - a, dtype=np.float64)
        mean = (s1[b] - s1[a]) / n
        var = np.maximum((s2[b] - s2[a]) / n - mean * mean, _FLOOR**2)
        return n * np.log(var)

    changes: list[int] = []
    stack = [(0, len(r))]
    while stack and len(changes) < max_changes:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        t = np.arange(a + min_size, b - min_size + 1)
        gains = cost(a, b) - cost(a, t) - cost(t, b)
        best = int(np.argmax(gains))
        if gains[best] <= penalty:
            continue
        split = int(t[best])
        changes.append(split)
        stack += [(split, b), (a, split)]
    return sorted(changes)
