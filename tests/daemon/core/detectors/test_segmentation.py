"""PELT: the optimal penalised segmentation against brute force (every segmentation of short
series enumerated, with the costs written out again here) and against ruptures' ``Pelt``,
and its behaviour on a clear step, on noise and on bad arguments.

With ``min_size > 1`` a start beaten at ``t`` may only be dropped from ``t + min_size`` on
(before, the next segment cannot start at ``t``). ruptures drops it at once and now and then
misses the optimum: the comparison with it asks for the same change points where it found
the optimum, and never a worse objective.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from adaptd.daemon.core.detectors.segmentation import pelt


def _cost(segment: np.ndarray, cost: str) -> float:
    """A segment's cost, written independently of the module: the squared deviations from
    its mean, or ``m log(var + 1e-6)`` with the maximum-likelihood variance."""
    m = len(segment)
    sse = float(np.sum((segment - segment.mean()) ** 2))
    return sse if cost == "mean" else m * math.log(sse / m + 1e-6)


def _segmentations(n: int, min_size: int, start: int = 0) -> Iterator[tuple[int, ...]]:
    """Every segmentation of ``[start, n)`` into segments of at least ``min_size`` values,
    as the ends of its segments (the last is ``n``)."""
    if n - start >= min_size:
        yield (n,)
    for end in range(start + min_size, n - min_size + 1):
        for rest in _segmentations(n, min_size, end):
            yield (end, *rest)


def _objective(
    x: np.ndarray, changes: list[int] | tuple[int, ...], penalty: float, cost: str
) -> float:
    bounds = (0, *changes, len(x))
    segments = itertools.pairwise(bounds)
    return sum(_cost(x[s:t], cost) for s, t in segments) + penalty * (len(bounds) - 1)


def _series(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with a random change of mean and of scale somewhere in the middle."""
    x = rng.normal(0.0, 1.0, n)
    k = int(rng.integers(2, n - 1))
    x[k:] = x[k:] * rng.uniform(0.3, 3.0) + rng.normal(0.0, 2.0)
    return x


def _check_against_brute_force(cost: str, min_size: int) -> None:
    for seed, n in itertools.product(range(4), range(6, 14)):
        x = _series(np.random.default_rng([seed, n]), n)
        table = {(s, t): _cost(x[s:t], cost) for s in range(n) for t in range(s + 1, n + 1)}
        every = [  # (sum of the segments' costs, number of segments, change points)
            (sum(table[st] for st in itertools.pairwise((0, *ends))), len(ends), list(ends[:-1]))
            for ends in _segmentations(n, min_size)
        ]
        for penalty in (0.2, 1.0, 3.0, 8.0):
            found = pelt(x, penalty, cost, min_size)
            if n < 2 * min_size:
                assert found == []
                continue
            scored = sorted((total + penalty * k, changes) for total, k, changes in every)
            optimum, best = scored[0]
            where = (seed, n, penalty)
            assert _objective(x, found, penalty, cost) == pytest.approx(optimum, abs=1e-9), where
            if len(scored) == 1 or scored[1][0] > optimum + 1e-9:  # a unique optimum
                assert found == best, where


def test_mean_cost_matches_brute_force_with_segments_of_one() -> None:
    _check_against_brute_force("mean", 1)


@pytest.mark.parametrize(
    ("cost", "min_size"), [("mean", 2), ("mean", 3), ("meanvar", 2), ("meanvar", 3)]
)
def test_matches_brute_force_with_a_minimum_segment(cost: str, min_size: int) -> None:
    _check_against_brute_force(cost, min_size)


def test_pruning_keeps_a_start_needed_by_a_short_last_segment() -> None:
    """The smallest case: at t = 4 the start 0 loses to a split at 2 (1.75 > 1.5) and is
    pruned, but at t = 5 a split at 4 would leave one value, and one segment (5.0) beats the
    split at 2 (5.17)."""
    x = np.array([0.0, 1.0, 2.0, 2.0, 0.0])
    assert _objective(x, [], 1.0, "mean") < _objective(x, [2], 1.0, "mean")
    assert pelt(x, 1.0, "mean", min_size=2) == []


@pytest.mark.parametrize(("cost", "model"), [("mean", "l2"), ("meanvar", "normal")])
def test_matches_ruptures(cost: str, model: str) -> None:
    rpt = pytest.importorskip("ruptures")
    rng = np.random.default_rng(20240611)
    for case in range(50):
        n = int(rng.integers(30, 151))
        x = rng.normal(0.0, 1.0, n)
        for k in np.sort(rng.choice(np.arange(8, n - 8), size=int(rng.integers(0, 4)))):
            x[k:] = x[k:] * rng.uniform(0.5, 2.0) + rng.normal(0.0, 1.5)
        min_size = int(rng.choice([2, 3, 5]))
        penalty = float(rng.choice([1.0, 3.0])) * math.log(n)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)  # its small-bias notice
            algo = rpt.Pelt(model=model, min_size=min_size, jump=1).fit(x.reshape(-1, 1))
            expected = algo.predict(pen=penalty)[:-1]
        got = pelt(x, penalty, cost, min_size)
        ours, theirs = _objective(x, got, penalty, cost), _objective(x, expected, penalty, cost)
        assert ours <= theirs + 1e-9, (case, n, min_size)
        if ours > theirs - 1e-9:
            assert got == expected, (case, n, min_size)


@pytest.mark.parametrize("cost", ["mean", "meanvar"])
def test_finds_a_clear_step_exactly(cost: str) -> None:
    x = np.random.default_rng(1).normal(0.0, 1.0, 120)
    x[70:] += 5.0
    assert pelt(x, 3 * math.log(120), cost, min_size=5) == [70]


@pytest.mark.parametrize("cost", ["mean", "meanvar"])
@pytest.mark.parametrize("seed", range(5))
def test_pure_noise_gives_no_change_with_a_bic_penalty(cost: str, seed: int) -> None:
    x = np.random.default_rng(seed).normal(0.0, 1.0, 200)
    assert pelt(x, 3 * math.log(200), cost, min_size=5) == []


def test_rejects_bad_arguments() -> None:
    x = np.zeros(10)
    with pytest.raises(ValueError, match="cost"):
        pelt(x, 1.0, cost="variance")
    with pytest.raises(ValueError, match="min_size"):
        pelt(x, 1.0, cost="meanvar", min_size=1)
    with pytest.raises(ValueError, match="min_size"):
        pelt(x, 1.0, cost="mean", min_size=0)
    assert pelt(x, 1.0, cost="mean", min_size=1) == []  # one is enough for a mean


def test_a_series_shorter_than_two_segments_has_no_change() -> None:
    x = np.r_[np.zeros(4), np.full(5, 100.0)]
    assert pelt(x, 1.0, "mean", min_size=5) == []
    assert pelt(x, 1.0, "meanvar", min_size=5) == []
    assert pelt(x, 1.0, "mean", min_size=4) == [4]
