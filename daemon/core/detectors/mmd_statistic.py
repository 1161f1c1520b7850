"""The statistic of :class:`~.mmd.KernelMMD`: the unbiased MMD² of a Gaussian kernel with
the median-heuristic bandwidth, standardised by its estimated no-change deviation, over one
window split into a reference and a recent part, and the split that best separates the
window (the change's location). The formulas are in :mod:`.mmd`'s description.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["WindowStatistic", "median_bandwidth", "mmd2_unbiased", "window_statistic"]


def _check_int(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


# -- the statistic -------------------------------------------------------------------------


class WindowStatistic(NamedTuple):
    """The two-sample test between the first ``n`` values of a window and the rest."""

    mmd2: float
    """The unbiased estimate of the squared MMD (Gretton et al. 2012, eq. 3)."""
    bandwidth: float
    """The Gaussian kernel's ``sigma`` (median heuristic on the reference)."""
    variance: float
    """The estimated variance of ``mmd2`` when both samples come from one distribution."""
    statistic: float
    """``mmd2 / sqrt(variance)``: the studentised statistic the detector thresholds."""


def _squared_distances(z: np.ndarray) -> np.ndarray:
    """All pairwise squared Euclidean distances of the rows of ``z`` (centred first by the
    caller: the Gram form ``|a|^2 + |b|^2 - 2 a.b`` loses digits far from the origin)."""
    sq = np.einsum("ij,ij->i", z, z)
    d2 = z @ z.T
    d2 *= -2.0
    d2 += sq[:, None]
    d2 += sq[None, :]
    np.maximum(d2, 0.0, out=d2)  # rounding can leave -1e-16 where the distance is 0
    return d2


def _median_of(pairs: np.ndarray) -> float:
    """The median squared distance, with the fall-backs of :func:`median_bandwidth`."""
    p = pairs.size
    k = (p - 1) // 2
    if p % 2:
        med = float(np.partition(pairs, k)[k])
    else:
        part = np.partition(pairs, (k, k + 1))
        med = 0.5 * float(part[k] + part[k + 1])
    if med > 0.0:
        return med
    mean = float(pairs.mean())  # more than half the pairs coincide: discrete values
    return mean if mean > 0.0 else 1.0  # all coincide: any positive width will do


def median_bandwidth(reference: np.ndarray) -> float:
    """The median heuristic: ``sigma`` = the median distance between two of the reference's
    values (over the pairs ``i < j``; Gretton et al. 2012, section 8).

    Computed as the square root of the median *squared* distance, which is the same number
    when the pairs are odd in number (the default window of 50 has 1,225) and the root of
    the mean of the two middle squared distances otherwise. When more than half the pairs
    coincide (discrete values) the root of the mean squared distance is used instead, and
    1 when all do.

    >>> median_bandwidth(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]))
    5.0
    """
    x = np.asarray(reference, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"reference must be an (n >= 2, d) array, got shape {x.shape}")
    z = x - x.mean(axis=0)
    d2 = _squared_distances(z)
    return math.sqrt(_median_of(d2[np.triu_indices(x.shape[0], 1)]))


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased estimate of the squared MMD between samples ``x`` (n, d) and ``y``
    (m, d) under the Gaussian kernel ``exp(-|a - b|^2 / (2 bandwidth^2))`` (Gretton et al.
    2012, eq. 3): the within-sample means of the kernel over distinct pairs, less twice the
    between-sample mean.

    >>> x = np.array([[0.0], [1.0]])
    >>> round(mmd2_unbiased(x, x + 10.0, 1.0), 6)  # two far samples: 2 exp(-1/2)
    1.213061
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2 or x.ndim != 2 or y.shape[1:] != x.shape[1:]:
        raise ValueError(f"x and y must be (>= 2, d) arrays of one d: {x.shape}, {y.shape}")
    both = np.concatenate([x, y])
    k = np.exp(_squared_distances(both - both.mean(axis=0)) * (-0.5 / bandwidth**2))
    return float(
        (k[:n, :n].sum() - n) / (n * (n - 1))
        + (k[n:, n:].sum() - m) / (m * (m - 1))
        - 2.0 * k[:n, n:].sum() / (n * m)
    )


_FLAT = 1e-12
"""The mean square of the centred kernel below which the reference counts as all equal."""


def _flat(mmd2: float) -> float:
    return math.inf if mmd2 > _FLAT else 0.0


def _variance_factor(n: int, m: int) -> float:
    return 2.0 * (1.0 / (n * (n - 1)) + 1.0 / (m * (m - 1)) + 2.0 / (n * m))


def _kernel_test(
    z: np.ndarray, n: int, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, WindowStatistic]:
    """The kernel matrix of the window ``z`` (reference ``z[:n]``, recent ``z[n:]``; centred)
    and its statistic; ``pairs`` is :func:`_pairs` of ``n`` and ``len(z)``.

    The per-event path: each pass over the ``N x N`` matrix costs about 1 µs at N = 70, so
    the squared distances are formed only for the reference's pairs (for the median), and
    the kernel straight from the Gram matrix ``g`` as ``exp(g / s^2 - h_i - h_j)``,
    ``h = |z|^2 / (2 s^2)``: four passes where distances-then-kernel take seven; the
    variance's sums are reduced to the row sums' by algebra, not formed.
    """
    i, j, flat = pairs
    m = z.shape[0] - n
    k = z @ z.T.copy()  # the Gram matrix, turned into the kernel matrix in place
    sq = k.diagonal().copy()
    ref = sq[i] + sq[j] - 2.0 * k.take(flat)
    np.maximum(ref, 0.0, out=ref)  # rounding can leave -1e-16 where a distance is 0
    s2 = _median_of(ref)
    inv = 1.0 / s2
    h = sq * (0.5 * inv)
    k *= inv
    k -= h[:, None]
    k -= h
    np.exp(k, out=k)
    k.flat[:: n + m + 1] = 1.0  # exactly, not 1 +- rounding: the sums below leave it out
    rows = k[:n].sum(axis=0)  # each value's kernel sum over the reference (k is symmetric)
    kxx, kxy = float(rows[:n].sum()), float(rows[n:].sum())
    kyy = float(k[n:, n:].sum())
    mmd2 = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2.0 * kxy / (n * m)
    # The null variance, 2 E[kc^2] (1/(n(n-1)) + 1/(m(m-1)) + 2/(nm)) with kc the kernel
    # centred at the data's distribution (the three sums of the U-statistic are then
    # uncorrelated), and E[kc^2] the mean square of the reference's doubly-centred kernel
    # matrix off its diagonal. For the reference's row means r (mean rbar), the matrix is
    # K - r_i - r_j + rbar: its squares sum to |K|^2 - 2n |r|^2 + n^2 rbar^2, and its
    # diagonal's (K_ii = 1) to n (1 + rbar)^2 - 4 n rbar (1 + rbar) + 4 |r|^2.
    r2 = float(rows[:n] @ rows[:n]) / (n * n)  # |r|^2
    rbar = kxx / (n * n)
    kx = k[:n, :n]
    total = float(np.einsum("ij,ij->", kx, kx)) - 2.0 * n * r2 + n * n * rbar * rbar
    diagonal = n * (1.0 + rbar) ** 2 - 4.0 * n * rbar * (1.0 + rbar) + 4.0 * r2
    mean_square = (total - diagonal) / (n * (n - 1))
    variance = _variance_factor(n, m) * max(mean_square, 0.0)
    # Rounding leaves ~1e-16 where the reference's values are all equal (an all-ones
    # kernel); then any recent value unlike them is infinitely surprising.
    statistic = mmd2 / math.sqrt(variance) if mean_square > _FLAT else _flat(mmd2)
    return k, WindowStatistic(mmd2, math.sqrt(s2), variance, statistic)


def _pairs(n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's pairs ``i < j`` of a window of ``size``: ``(i, j, flat index)``."""
    i, j = np.triu_indices(n, 1)
    return i, j, i * size + j


def window_statistic(values: np.ndarray, n: int) -> WindowStatistic:
    """The detector's test between ``values[:n]`` (the reference) and ``values[n:]``.

    The values are taken as they are (the detector standardises its coordinates first).

    >>> rng = np.random.default_rng(0)
    >>> same = window_statistic(rng.normal(size=(70, 3)), 50)
    >>> moved = window_statistic(np.concatenate([rng.normal(size=(50, 3)),
    ...                                          rng.normal(size=(20, 3)) + 1.0]), 50)
    >>> abs(same.statistic) < 3.0 < moved.statistic
    True
    """
    z = np.asarray(values, dtype=float)
    if z.ndim != 2 or not 2 <= n <= z.shape[0] - 2:
        raise ValueError(f"values must be (N, d) with 2 <= n <= N - 2, got {z.shape}, n={n}")
    z = z - z.mean(axis=0)
    return _kernel_test(z, n, _pairs(n, z.shape[0]))[1]


def _location(k: np.ndarray) -> int:
    """The split ``s`` (1 <= s < N) of a window whose kernel matrix is ``k`` that most
    lowers the kernel least-squares cost: ``s (N - s) / N`` times the biased (V-statistic)
    MMD^2 between ``[:s]`` and ``[s:]`` (Arlot, Celisse & Harchaoui 2019), from the 2-D
    prefix sums of ``k`` in O(N^2) for all splits at once."""
    size = k.shape[0]
    prefix = np.zeros((size + 1, size + 1))
    np.cumsum(np.cumsum(k, axis=0), axis=1, out=prefix[1:, 1:])
    s = np.arange(1, size)
    before = prefix[s, s]  # sum over [:s] x [:s]
    across = prefix[s, size] - before  # [:s] x [s:]
    after = prefix[size, size] - 2.0 * prefix[s, size] + before  # [s:] x [s:]
    rest = size - s
    mmd2 = before / (s * s) + after / (rest * rest) - 2.0 * across / (s * rest)
    return int(s[np.argmax(s * rest * mmd2)])


# -- the calibration -----------------------------------------------------------------------
