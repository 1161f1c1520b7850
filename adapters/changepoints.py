"""The change-point metrics of the Turing change-point benchmark (TCPD): F1 and covering.

van den Burg and Williams (2020), *An Evaluation of Change Point Detection Algorithms*
(arXiv:2003.06222), score detectors against several human annotators per series, as
TCPDBench's ``analysis/scripts/metrics.py`` defines; these functions follow that code, and
reproduce its published scores. A change point ``i`` means a new segment starts at
observation ``i``; ``annotations`` maps each annotator to their change points.

- ``f1_score``: index 0 is added to every annotator's points and to the predictions. A true
  point is detected by a prediction within ``margin`` of it, each prediction detecting at most
  one point (the closest first). Precision is the number of detected points of the union of
  the annotators' sets over the number of predictions; recall is the mean over annotators of
  the fraction of their points detected; F1 is their harmonic mean.
- ``covering``: the change points cut ``0 .. n_obs-1`` into segments. Each annotator's
  segment is matched to the predicted segment of highest Jaccard index, weighted by its
  length (Arbeláez et al. 2011, eq. 8); the result is averaged over annotators.

>>> annotations = {"6": [10, 20], "7": [12]}
>>> precision_recall(annotations, [11])  # 12 cannot reuse 11, already matched to 10
(1.0, 0.8333333333333333)
>>> f1_score(annotations, [11])
0.9090909090909091
>>> f1_score(annotations, [])  # the benchmark's "zero" baseline: P = 1, R = (1/3 + 1/2) / 2
0.5882352941176471
>>> covering(annotations, [10, 20], n_obs=30)
0.8333333333333333
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .checks import non_negative, positive_int

__all__ = ["ChangePoints", "covering", "f1_score", "precision_recall"]

ChangePoints = Sequence[int] | NDArray[np.integer]


def precision_recall(
    annotations: Mapping[str, ChangePoints], predictions: ChangePoints, margin: int = 5
) -> tuple[float, float]:
    """Precision and recall of ``predictions`` against all annotators, within ``margin``.

    Both are always positive: index 0, added to every set, detects itself.

    >>> precision_recall({"6": [50, 53]}, [51])  # 51 detects 50 (and 0 detects 0), not 53
    (1.0, 0.6666666666666666)
    """
    margin = non_negative("margin", margin)
    truths = [_with_zero(_points(f"annotations[{uid!r}]", p)) for uid, p in annotations.items()]
    if not truths:
        raise ValueError("annotations must hold at least one annotator")
    predicted = _with_zero(_points("predictions", predictions))

    union = np.unique(np.concatenate(truths))
    precision = _true_positives(union, predicted, margin) / predicted.size
    # Written as TCPDBench writes it, so that the floats agree to the last bit.
    recall = 1 / len(truths) * sum(_true_positives(t, predicted, margin) / t.size for t in truths)
    return precision, recall


def f1_score(
    annotations: Mapping[str, ChangePoints], predictions: ChangePoints, margin: int = 5
) -> float:
    """The F1 score of ``predictions``: the harmonic mean of :func:`precision_recall`.

    >>> f1_score({"6": [50], "7": []}, [55]), f1_score({"6": [50], "7": []}, [56])
    (1.0, 0.6)
    """
    precision, recall = precision_recall(annotations, predictions, margin)
    # 2PR / (P + R) in TCPDBench's form (alpha = 1/2), again for bit-identical scores.
    return precision * recall / (0.5 * recall + 0.5 * precision)


def covering(
    annotations: Mapping[str, ChangePoints], predictions: ChangePoints, n_obs: int
) -> float:
    """The segmentation covering of the annotators' segmentations by the predicted one,
    averaged over annotators, for a series of ``n_obs`` observations.

    Points at 0, repeated, or at ``n_obs`` and beyond cut nothing, as in TCPDBench.

    >>> covering({"6": [10]}, [15], n_obs=20)  # (10 * 10/15 + 10 * 5/10) / 20
    0.5833333333333333
    """
    n_obs = positive_int("n_obs", n_obs)
    p_start, p_end = _segments(_points("predictions", predictions), n_obs)
    covers = []
    for uid, points in annotations.items():
        a_start, a_end = _segments(_points(f"annotations[{uid!r}]", points), n_obs)
        # Intervals, so |A ∩ P| and |A ∪ P| follow from the ends: no sets of indices needed.
        inter = np.minimum(a_end[:, None], p_end) - np.maximum(a_start[:, None], p_start)
        inter = np.maximum(inter, 0)
        a_len, p_len = a_end - a_start, p_end - p_start
        best = (inter / (a_len[:, None] + p_len - inter)).max(axis=1)
        # A left-to-right Python sum, as TCPDBench accumulates it (numpy sums pairwise).
        covers.append(sum((a_len * best).tolist()) / n_obs)
    if not covers:
        raise ValueError("annotations must hold at least one annotator")
    return sum(covers) / len(covers)


def _points(name: str, points: ChangePoints) -> NDArray[np.int64]:
    """The distinct change points, sorted: TCPDBench takes sets, so repeats count once."""
    array = np.asarray(points)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a flat sequence of integer indices, got {points!r}")
    # Refused, not mimicked: TCPDBench's covering would drop them and every later point.
    if array.min() < 0:
        raise ValueError(f"{name} must hold non-negative indices, got {points!r}")
    return np.unique(array.astype(np.int64))


def _with_zero(points: NDArray[np.int64]) -> NDArray[np.int64]:
    """Add index 0, the start of the series, which F1 treats as a change point everyone finds."""
    return points if points.size and points[0] == 0 else np.concatenate(([0], points))


def _true_positives(truth: NDArray[np.int64], predicted: NDArray[np.int64], margin: float) -> int:
    """How many points of ``truth`` a prediction within ``margin`` detects, each prediction
    detecting at most one: TCPDBench's ``true_positives``, a greedy and not a maximum
    matching. Each true point, in ascending order, takes the closest unused prediction, the
    smaller one on a tie. (TCPDBench walks a Python set, whose order is that of the hash
    table; the order matters only when a prediction is in reach of two true points.)"""
    free = np.ones(predicted.size, dtype=bool)
    found = 0
    for point in truth:
        distance = np.where(free, np.abs(predicted - point), np.inf)
        closest = int(np.argmin(distance))  # the first minimum: the smaller prediction
        if distance[closest] <= margin:
            free[closest] = False
            found += 1
    return found


def _segments(points: NDArray[np.int64], n_obs: int) -> tuple[NDArray[np.int64], ...]:
    """The segments' starts and (exclusive) ends."""
    cuts = points[(points > 0) & (points < n_obs)]
    return np.concatenate(([0], cuts)), np.concatenate((cuts, [n_obs]))
