"""The strategy book: positions from prices alone, sized by the volatility target."""

from __future__ import annotations

import math

import pytest
from state_support import stored

from adaptd.daemon.core.strategies import StrategyBook, strategy_names


def test_names_follow_the_lookbacks_in_order() -> None:
    assert strategy_names((3, 10), (2, 4)) == (
        "flat",
        "long",
        "trend_3",
        "trend_10",
        "reversal_2",
        "reversal_4",
    )


def test_positions_hold_zero_until_the_lookback_is_known_then_follow_the_sign() -> None:
    book = StrategyBook(trend=(2,), reversal=(1,), cap=3.0)
    assert book.update(0.0, vol=0.01, fast_var=1e-4) == (0.0, 1.0, 0.0, 0.0)
    assert book.update(-0.01, vol=0.01, fast_var=1e-4) == (0.0, 1.0, 0.0, 1.0)  # fell: revert
    assert book.update(0.02, vol=0.01, fast_var=1e-4) == (0.0, 1.0, 1.0, -1.0)
    assert book.previous == (0.0, 1.0, 0.0, 1.0)
    # flat over the lookback: no direction, no position
    assert book.update(-0.01, vol=0.01, fast_var=1e-4)[2] == 0.0


def test_leverage_targets_the_slow_volatility_and_is_capped() -> None:
    book = StrategyBook(trend=(1,), reversal=(), cap=2.0)
    assert book.update(0.0, vol=0.02, fast_var=0.01**2)[1] == pytest.approx(2.0)  # 2x, at cap
    assert book.update(0.0, vol=0.02, fast_var=0.005**2)[1] == pytest.approx(2.0)  # 4x, capped
    assert book.update(0.0, vol=0.01, fast_var=0.04**2)[1] == pytest.approx(0.25)
    assert book.update(0.0, vol=0.01, fast_var=0.0)[1] == 2.0  # no variance yet: the cap


def test_a_trend_reversal_flips_the_trend_strategy_after_its_lookback() -> None:
    book = StrategyBook(trend=(5,), reversal=(), cap=1.0)
    prices = [0.01 * i for i in range(20)] + [0.19 - 0.01 * i for i in range(1, 20)]
    held = [book.update(p, vol=0.01, fast_var=1e-4)[2] for p in prices]
    assert held[19] == 1.0
    first_short = next(i for i in range(20, len(held)) if held[i] < 0)
    assert first_short == 22  # 0.16 < 0.17: the first price below the one 5 events before


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="trend lookback"):
        StrategyBook(trend=(0,), reversal=(), cap=1.0)
    with pytest.raises(ValueError, match="cap"):
        StrategyBook(trend=(), reversal=(), cap=-1.0)


def test_it_pickles_and_continues() -> None:

    book = StrategyBook(trend=(2,), reversal=(1,), cap=2.0)
    for lp in (0.0, 0.01, 0.02):
        book.update(lp, 0.01, 1e-4)
    copy = stored(book)
    assert copy.update(0.015, 0.01, 1e-4) == book.update(0.015, 0.01, 1e-4)
    assert math.isclose(copy.positions[1], 1.0)
