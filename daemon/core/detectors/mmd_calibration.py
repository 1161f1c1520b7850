"""Calibrating :class:`~.mmd.KernelMMD`'s threshold by simulation: its statistic on
in-control Gaussian streams (vectorised), and the threshold whose first-passage rate, with
the detector's alarm-and-restart rule replayed, is the false-alarm rate asked for. This is
how :data:`~.mmd.THRESHOLDS` was made, and how a threshold for other windows is found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .mmd import RECENT, WINDOW
from .mmd_statistic import _FLAT, _check_int, _pairs, _variance_factor

__all__ = ["calibrate", "null_statistics"]


def null_statistics(stream: np.ndarray, window: int = WINDOW, recent: int = RECENT) -> np.ndarray:
    """The statistic of every full window of ``stream`` (T, d), vectorised: element ``k`` is
    :func:`~.mmd_statistic.window_statistic` of ``stream[k : k + window + recent]`` split at
    ``window``
    (``T - window - recent + 1`` of them). The values are taken as already standardised.

    This is what :func:`calibrate` simulates; it does in one numpy pass per block of
    windows what the detector does per event, at about the same cost per window.

    >>> from adaptd.daemon.core.detectors.mmd_statistic import window_statistic
    >>> x = np.random.default_rng(1).normal(size=(80, 2))
    >>> s = null_statistics(x)
    >>> s.shape, bool(np.isclose(s[3], window_statistic(x[3:73], 50).statistic))
    ((11,), True)
    """
    x = np.asarray(stream, dtype=float)
    n, m = _check_int("window", window, 2), _check_int("recent", recent, 2)
    size = n + m
    if x.ndim != 2 or x.shape[0] < size:
        raise ValueError(f"stream must be (T >= {size}, d), got shape {x.shape}")
    windows = sliding_window_view(x, (size, x.shape[1]))[:, 0]
    count = windows.shape[0]
    out = np.empty(count)
    pairs = _pairs(n, size)[2]
    p = pairs.size
    k = (p - 1) // 2
    kth = (k,) if p % 2 else (k, k + 1)
    factor = _variance_factor(n, m)
    block = 64  # windows at a time: the kernel matrices stay in cache
    for a in range(0, count, block):
        z = windows[a : a + block]
        b = z.shape[0]
        sq = np.einsum("bij,bij->bi", z, z)
        d2 = z @ z.transpose(0, 2, 1)
        d2 *= -2.0
        d2 += sq[:, :, None]
        d2 += sq[:, None, :]
        np.maximum(d2, 0.0, out=d2)
        ref = d2.reshape(b, size * size)[:, pairs]
        part = np.partition(ref, kth, axis=1)
        s2 = part[:, k] if p % 2 else 0.5 * (part[:, k] + part[:, k + 1])
        if not (s2 > 0.0).all():
            mean = ref.mean(axis=1)
            s2 = np.where(s2 > 0.0, s2, np.where(mean > 0.0, mean, 1.0))
        d2 *= (-0.5 / s2)[:, None, None]
        kern = np.exp(d2, out=d2)
        rows = kern[:, :, :n].sum(axis=2)
        kxx = rows[:, :n].sum(axis=1)
        kxy = rows[:, n:].sum(axis=1)
        kyy = kern[:, n:, n:].sum(axis=(1, 2))
        mmd2 = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2.0 * kxy / (n * m)
        kx = kern[:, :n, :n]
        r = rows[:, :n] / n
        rbar = r.mean(axis=1)
        total = (
            np.einsum("bij,bij->b", kx, kx)
            - 2.0 * n * np.einsum("bi,bi->b", r, r)
            + n * n * rbar * rbar
        )
        diagonal = ((1.0 - 2.0 * r + rbar[:, None]) ** 2).sum(axis=1)
        mean_square = (total - diagonal) / (n * (n - 1))
        variance = factor * np.maximum(mean_square, 0.0)
        flat = mean_square <= _FLAT
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = mmd2 / np.sqrt(variance)
        if flat.any():
            stat[flat] = np.where(mmd2[flat] > _FLAT, np.inf, 0.0)
        out[a : a + b] = stat
    return out


def _alarms(statistics: np.ndarray, threshold: float, blind: int) -> tuple[int, int]:
    """``(alarms, monitored events)`` of the detector's alarm rule on a statistic series:
    alarm at the first statistic above ``threshold``, then skip ``blind`` windows (the
    restart refills the window before it can alarm again)."""
    above = np.flatnonzero(statistics > threshold)
    alarms, monitored, t, end = 0, 0, 0, statistics.size
    while t < end:
        j = int(np.searchsorted(above, t))
        if j == above.size:
            monitored += end - t
            break
        a = int(above[j])
        alarms += 1
        monitored += a - t + 1
        t = a + blind
    return alarms, monitored


def calibrate(
    dim: int,
    false_alarms_per_10k: Sequence[float],
    window: int = WINDOW,
    recent: int = RECENT,
    events: int = 1_000_000,
    seed: int = 0,
) -> list[float]:
    """The thresholds at which :class:`KernelMMD` raises ``false_alarms_per_10k`` false
    alarms per 10,000 monitored events on independent N(0, 1) coordinates, by simulation.

    ``events`` Gaussian vectors of dimension ``dim`` (seeded) go through
    :func:`null_statistics`, and the detector's alarm rule (an alarm, then the ``window +
    recent - 1`` vectors that refill the window and cannot alarm) is replayed on the
    series; each threshold is bisected until the rate matches. The cost is about 35 µs per
    event (the table's 4,000,000 took 130-150 s per dimension). A rate's relative error is
    about ``1 / sqrt(alarms)``, so ``r`` per 10,000 wants ``events`` well above
    ``10_000 * 100 / r``.

    A short run against the table's 4,000,000 events (``THRESHOLDS[2]``: 4.756 and 2.229);
    at 10 per 10,000 it has seen only ~20 alarms:

    >>> [round(t, 1) for t in calibrate(2, [10.0, 100.0], events=20_000)]
    [5.2, 2.2]
    """
    dim = _check_int("dim", dim, 1)
    size = _check_int("window", window, 2) + _check_int("recent", recent, 2)
    _check_int("events", events, size)
    rates = [float(r) for r in false_alarms_per_10k]
    if not all(math.isfinite(r) and r > 0.0 for r in rates):
        raise ValueError(f"false_alarms_per_10k must be positive numbers, got {rates!r}")
    rng = np.random.default_rng(seed)
    chunk = 200_000  # vectors simulated at a time (windows overlap across chunks)
    parts, previous = [], np.empty((0, dim))
    for start in range(0, events, chunk):
        fresh = rng.standard_normal((min(chunk, events - start), dim))
        x = np.concatenate([previous, fresh])
        if x.shape[0] >= size:
            parts.append(null_statistics(x, window, recent))
        previous = x[-(size - 1) :]
    statistics = np.concatenate(parts)
    thresholds = []
    for rate in rates:
        lo, hi = 0.0, 1.0
        while _rate(statistics, hi, size) > rate:
            lo, hi = hi, 2.0 * hi
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _rate(statistics, mid, size) > rate:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-4:
                break
        thresholds.append(0.5 * (lo + hi))
    return thresholds


def _rate(statistics: np.ndarray, threshold: float, blind: int) -> float:
    alarms, monitored = _alarms(statistics, threshold, blind)
    return 10_000.0 * alarms / max(monitored, 1)


# -- the threshold -------------------------------------------------------------------------
