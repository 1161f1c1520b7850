"""Which regime a stream is in: a prototypical classifier over the stream's own regimes.

Each regime of a stream has a prototype, the mean of its examples embedded as
``z = (x[columns], y)`` (features and the realised scaled return: a regime is a joint
distribution of both), kept with its count and per-dimension spread (the variance of its
examples around the prototype). The embedding leaves out features with a long memory (by
default the slow EW mean, the volatility ratio and the spread and volume z-scores): right after
a shift they still describe the previous regime, so a returning regime would look new.

Prototypes are updated incrementally as labelled examples of the
current regime arrive (Chan et al.'s parallel merge of means and sums of squares, one
vectorised update per batch), so they summarise a whole regime, not only its first shots.

After a shift, the ``shots`` fresh examples of the new regime are compared with every stored
prototype by the squared distance of their mean to it, per dimension in units of what that
distance would be if both came from one regime, averaged over the ``D`` dimensions::

    ratio_k = (1/D) sum_j (mean(z_new)_j - p_kj)^2 / ((v_kj + v_new,j) / n_new)

where ``v`` are variances and ``n_new`` the number of new examples: for two samples of one
distribution, ``E(mean_1 - mean_2)^2 = v (1/n_1 + 1/n_2)`` in each dimension (so the ratio is
about 1, whatever the scale of each feature), and the prototype's own count is deliberately
not used (a long regime would otherwise make the
test ever stricter, and regimes are never exactly stationary). The nearest prototype with
``ratio <= novelty`` names a known regime; otherwise the examples found a new one. This is a
prototypical network (Snell et al., 2017) whose embedding is a fixed selection of the
daemon's dimensionless features and whose distance is a diagonal Mahalanobis distance to the
prototype, with a novelty threshold for the open set of regimes.

The book is bounded: beyond ``max_regimes`` the regime seen least recently is forgotten. It
also remembers, per regime, the weights of the last policy published for it, so that a
returning regime starts its adaptation from what was learned for it.

Pure: numpy only, picklable (it lives in the stream's partition snapshot).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> book = RegimeBook(novelty=4.0, max_regimes=8)
>>> calm = rng.normal(0.0, 1.0, (20, 3))
>>> trend = rng.normal(3.0, 1.0, (20, 3))
>>> book.classify(calm)            # nothing stored yet: a new regime
RegimeMatch(regime_id=0, known=False, ratio=inf, nearest=-1)
>>> book.add(0, calm)
>>> match = book.classify(trend)
>>> match.known, match.regime_id
(False, 1)
>>> book.add(1, trend)
>>> again = book.classify(rng.normal(0.0, 1.0, (20, 3)))
>>> again.known, again.regime_id, again.ratio < 4.0
(True, 0, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from adaptd.adapters.checks import positive_finite, positive_int

__all__ = ["RegimeBook", "RegimeMatch", "RegimeTracker", "embed"]

_TINY = 1e-12


class RegimeMatch(NamedTuple):
    """Outcome of classifying the examples that followed a shift."""

    regime_id: int
    """The regime they belong to: a stored one when ``known``, else a fresh id."""
    known: bool
    """True when a stored prototype was within the novelty threshold."""
    ratio: float
    """Distance ratio to the nearest prototype (``inf`` when none is stored)."""
    nearest: int
    """Id of the nearest stored prototype (-1 when none is stored)."""


def embed(x: np.ndarray, y: np.ndarray, columns: Sequence[int] | None = None) -> np.ndarray:
    """Examples as regime-embedding rows: the feature ``columns`` (all when None), then the
    realised label."""
    x = np.asarray(x, dtype=np.float64)
    if columns is not None:
        x = x[:, list(columns)]
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    return np.hstack((x, y))


class _Prototype:
    """Running mean, per-dimension sums of squared deviations and count of one regime."""

    __slots__ = ("count", "last_seen", "mean", "sq")

    def __init__(self, z: np.ndarray, tick: int) -> None:
        self.count = z.shape[0]
        self.mean = z.mean(axis=0)
        self.sq = ((z - self.mean) ** 2).sum(axis=0)
        self.last_seen = tick

    @property
    def variance(self) -> np.ndarray:
        """Per-dimension variance of the regime's examples around the prototype."""
        return self.sq / self.count

    def merge(self, z: np.ndarray, tick: int) -> None:
        n_b = z.shape[0]
        mean_b = z.mean(axis=0)
        sq_b = ((z - mean_b) ** 2).sum(axis=0)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.sq = self.sq + sq_b + delta * delta * (self.count * n_b / n)
        self.count = n
        self.last_seen = tick


class RegimeBook:
    """The regimes of one stream: prototypes, a novelty test, and each regime's last policy.

    Parameters
    ----------
    novelty
        Largest distance ratio (see the module docstring) at which new examples still belong
        to a stored regime; about 1 is expected for examples of the same regime.
    max_regimes
        Most regimes kept; beyond it the one seen least recently is forgotten.
    """

    def __init__(self, novelty: float, max_regimes: int) -> None:
        self.novelty = positive_finite("novelty", novelty)
        self.max_regimes = positive_int("max_regimes", max_regimes)
        self._prototypes: dict[int, _Prototype] = {}
        self._policies: dict[int, dict[str, np.ndarray]] = {}
        self._next_id = 0
        self._tick = 0

    def __len__(self) -> int:
        return len(self._prototypes)

    @property
    def regime_ids(self) -> tuple[int, ...]:
        return tuple(self._prototypes)

    @property
    def next_id(self) -> int:
        """The id the next new regime will get."""
        return self._next_id

    def prototype(self, regime_id: int) -> tuple[np.ndarray, int, np.ndarray]:
        """(prototype, count, per-dimension variance) of a stored regime; KeyError if absent."""
        p = self._prototypes[regime_id]
        return p.mean.copy(), p.count, p.variance

    def classify(self, z: np.ndarray) -> RegimeMatch:
        """The regime of a set of embedded examples ``(n, d)``; the book is not changed."""
        z = _rows(z)
        if not self._prototypes:
            return RegimeMatch(self._next_id, False, math.inf, -1)
        n = z.shape[0]
        mean = z.mean(axis=0)
        var_new = z.var(axis=0)
        best_id, best = -1, math.inf
        for regime_id, p in self._prototypes.items():
            if p.mean.shape != mean.shape:
                raise ValueError(f"examples have {mean.shape[0]} dims, regimes {p.mean.shape[0]}")
            ratio = _ratio(mean - p.mean, (p.variance + var_new) / n)
            if ratio < best:
                best_id, best = regime_id, ratio
        if best <= self.novelty:
            return RegimeMatch(best_id, True, best, best_id)
        return RegimeMatch(self._next_id, False, best, best_id)

    def add(self, regime_id: int, z: np.ndarray) -> None:
        """Merge embedded examples into a regime's prototype, creating it if it is new."""
        z = _rows(z)
        self._tick += 1
        p = self._prototypes.get(regime_id)
        if p is not None:
            p.merge(z, self._tick)
            return
        self._prototypes[regime_id] = _Prototype(z, self._tick)
        self._next_id = max(self._next_id, regime_id + 1)
        while len(self._prototypes) > self.max_regimes:
            oldest = min(self._prototypes, key=lambda k: self._prototypes[k].last_seen)
            del self._prototypes[oldest]
            self._policies.pop(oldest, None)

    def remember_policy(self, regime_id: int, weights: dict[str, np.ndarray]) -> None:
        """Keep the weights of the policy published for a stored regime."""
        if regime_id in self._prototypes:
            self._policies[regime_id] = weights

    def policy(self, regime_id: int) -> dict[str, np.ndarray] | None:
        """The last policy published for a regime, if any."""
        return self._policies.get(regime_id)


class Labelled(Protocol):
    """A labelled example, as the tracker reads it (``adaptd.daemon.core.labels.Example``)."""

    @property
    def x(self) -> tuple[float, ...]: ...

    @property
    def y(self) -> float: ...

    @property
    def index(self) -> int: ...


class RegimeTracker:
    """The regime a (stream, task) is in now, and its book of regimes.

    Labelled examples of the current regime are buffered (``rows``) and merged into its
    prototype once per batch and at every shift (:meth:`learn`); the examples that follow a
    shift are classified (:meth:`classify`), which names the new current regime.

    Parameters
    ----------
    novelty, max_regimes
        Of the :class:`RegimeBook`.

    ``columns`` (the feature columns of the embedding, see :func:`embed`) come from the
    configuration at every call: they are not part of the snapshot.
    """

    __slots__ = ("book", "regime", "rows")

    def __init__(self, novelty: float, max_regimes: int) -> None:
        self.book = RegimeBook(novelty, max_regimes)
        self.regime = 0
        """Id of the current regime (0 for the first)."""
        self.rows: list[Labelled] = []
        """Labelled examples of the current regime not yet merged (the caller appends)."""

    def learn(self, columns: Sequence[int] | None) -> None:
        """Merge the buffered examples into the current regime's prototype."""
        rows = self.rows
        if rows:
            self.rows = []
            x = np.array([r.x for r in rows], dtype=np.float64)
            y = np.fromiter((r.y for r in rows), dtype=np.float64, count=len(rows))
            self.book.add(self.regime, embed(x, y, columns))

    def classify(self, x: np.ndarray, y: np.ndarray, columns: Sequence[int] | None) -> RegimeMatch:
        """Name the regime of the examples that followed a shift, add them to it, and make it
        the current regime."""
        z = embed(x, y, columns)
        match = self.book.classify(z)
        self.book.add(match.regime_id, z)
        self.regime = match.regime_id
        return match


def _ratio(diff: np.ndarray, scale: np.ndarray) -> float:
    """Mean over dimensions of diff^2 / scale; a dimension constant in both sets (scale 0)
    counts 0 when the constants agree and makes the sets different when they do not."""
    d2 = diff * diff
    flat = scale <= _TINY
    if np.any(d2[flat] > _TINY):
        return math.inf
    terms = np.divide(d2, scale, out=np.zeros_like(d2), where=~flat)
    return float(terms.mean())


def _rows(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"examples must have shape (n >= 1, d), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("examples must be finite")
    return z
