"""The prototypical regime classifier: the book itself, and regimes named by a stream."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from state_support import stored
from test_stream import collect, feed, make_config, market_events, regime_walk

from adaptd.daemon.core.regimes import RegimeBook, embed
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.core.validation import ValidationParams


def sample(mean: float, n: int = 20, d: int = 3, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, scale, (n, d))


def test_an_empty_book_calls_anything_new_with_the_next_id() -> None:
    book = RegimeBook(novelty=4.0, max_regimes=4)
    match = book.classify(sample(0.0))
    assert (match.regime_id, match.known, match.nearest) == (0, False, -1)
    assert math.isinf(match.ratio)
    assert len(book) == 0  # classify never changes the book


def test_same_distribution_is_known_and_a_shifted_one_is_new() -> None:
    book = RegimeBook(novelty=4.0, max_regimes=4)
    book.add(0, sample(0.0, n=200, seed=1))
    same = [book.classify(sample(0.0, seed=s)) for s in range(2, 40)]
    # The ratio is about 1 for two samples of one regime.
    assert 0.5 < np.mean([m.ratio for m in same]) < 1.6
    assert sum(m.known and m.regime_id == 0 for m in same) >= 36
    moved = book.classify(sample(1.5, seed=99))
    assert (moved.known, moved.regime_id, moved.nearest) == (False, 1, 0)
    assert moved.ratio > 4.0


def test_the_ratio_does_not_depend_on_the_scale_of_each_feature() -> None:
    a, b = sample(0.0, seed=1), sample(0.3, seed=2)
    scales = np.array([1.0, 1e3, 1e-3])
    one, other = RegimeBook(4.0, 4), RegimeBook(4.0, 4)
    one.add(0, a)
    other.add(0, a * scales)
    assert one.classify(b).ratio == pytest.approx(other.classify(b * scales).ratio, rel=1e-9)


def test_incremental_updates_equal_the_batch_prototype() -> None:
    z = sample(0.7, n=50, seed=3)
    book = RegimeBook(4.0, 4)
    for chunk in np.array_split(z, [1, 7, 30]):
        book.add(5, chunk)
    mean, count, var = book.prototype(5)
    assert count == 50
    np.testing.assert_allclose(mean, z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, z.var(axis=0), rtol=1e-10)
    assert book.next_id == 6


def test_a_dimension_constant_in_both_sets_counts_only_when_it_differs() -> None:
    a = np.hstack((sample(0.0, d=2, seed=4), np.zeros((20, 1))))
    b = np.hstack((sample(0.0, d=2, seed=5), np.zeros((20, 1))))
    book = RegimeBook(4.0, 4)
    book.add(0, a)
    assert book.classify(b).known
    assert math.isinf(book.classify(b + np.array([0.0, 0.0, 1.0])).ratio)


def test_the_least_recently_seen_regime_is_forgotten_with_its_policy() -> None:
    book = RegimeBook(4.0, max_regimes=2)
    weights = {"w": np.ones(2, np.float32)}
    book.add(0, sample(0.0))
    book.remember_policy(0, weights)
    book.add(1, sample(5.0))
    book.add(0, sample(0.0, seed=1))  # 0 seen again: 1 is now the oldest
    book.add(2, sample(10.0))
    assert book.regime_ids == (0, 2)
    assert book.policy(0) is weights
    book.remember_policy(1, weights)  # forgotten regimes keep no policy
    assert book.policy(1) is None
    assert book.next_id == 3


def test_the_book_pickles_with_its_state() -> None:
    book = RegimeBook(4.0, 4)
    book.add(0, sample(0.0))
    book.remember_policy(0, {"w": np.zeros(1, np.float32)})
    copy = stored(book)
    probe = sample(0.1, seed=8)
    assert copy.classify(probe) == book.classify(probe)
    assert copy.policy(0) is not None


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"novelty": 0.0, "max_regimes": 1}, "novelty"),
        ({"novelty": math.inf, "max_regimes": 1}, "novelty"),
        ({"novelty": 1.0, "max_regimes": 0}, "max_regimes"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RegimeBook(**kwargs)


def test_bad_examples_are_refused() -> None:
    book = RegimeBook(4.0, 4)
    with pytest.raises(ValueError, match="shape"):
        book.classify(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        book.add(0, np.array([[np.nan, 1.0]]))
    book.add(0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="dims"):
        book.classify(np.zeros((2, 3)))


def test_embed_selects_columns_and_appends_the_label() -> None:
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(embed(x, [7.0, 8.0], (0, 2)), [[0, 2, 7], [3, 5, 8]])


# -- in a stream ------------------------------------------------------------------------


QUIET, UP, DOWN = (0.0, 0.001), (0.003, 0.004), (-0.002, 0.001)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_returning_regime_gets_its_id_back_and_a_different_one_does_not(seed: int) -> None:
    prices = regime_walk(2000, [500, 1000, 1500], seed, [QUIET, UP, QUIET, DOWN])
    state = StreamState("X", "in", 0, make_config())
    results = feed(state, market_events(prices), batch=10)
    shifts = collect(results, "shifts")
    assert [s.segment for s in shifts] == [1, 2, 3]
    matches = [m for _, _, m in collect(results, "regimes")]
    assert [(m.regime_id, m.known) for m in matches] == [(1, False), (0, True), (2, False)]
    assert state.tracks[0].regimes.regime == 2
    assert set(state.tracks[0].regimes.book.regime_ids) == {0, 1, 2}
    # Episodes carry the regime id; a regime's episodes come back when it returns.
    episodes = collect(results, "episodes")
    assert {ep.regime for ep in episodes} == {0, 1, 2}
    quiet = [ep for ep in episodes if ep.regime == 0]
    assert {ep.segment for ep in quiet} >= {0, 2}


def test_requests_of_a_known_regime_start_from_its_last_policy() -> None:
    prices = regime_walk(1500, [500, 1000], 0, [QUIET, UP, QUIET])
    # The policy adopted below is random: validation would retire it, which is not the point.
    config = dataclasses.replace(make_config(), validation=ValidationParams(enabled=False))
    state = StreamState("X", "in", 0, config)
    events = market_events(prices)
    first = feed(state, events[:900], batch=10)
    (request,) = collect(first, "requests")
    assert request.regime is not None and not request.regime.known
    assert request.start_weights is None  # a new regime starts from the initialisation
    in_dim = len(config.feature_names)
    rng = np.random.default_rng(0)
    weights = {
        "layers.0.weight": rng.normal(size=(4, in_dim)).astype(np.float32),
        "layers.0.bias": np.zeros(4, np.float32),
        "layers.2.weight": rng.normal(size=(1, 4)).astype(np.float32),
        "layers.2.bias": np.zeros(1, np.float32),
    }
    state.tracks[0].adopt(1, weights, request.regime.regime_id)
    state.tracks[0].complete(request.id)
    rest = feed(state, events, batch=10, start=900)
    (back,) = collect(rest, "requests")
    assert back.regime is not None and back.regime.known
    assert back.regime.regime_id == 0
    assert back.start_weights is None  # regime 0 never had a policy of its own
    # Once regime 0 has a policy, its next return starts from it.
    state.tracks[0].adopt(2, weights, 0)
    assert state.tracks[0].regimes.book.policy(0) is weights
