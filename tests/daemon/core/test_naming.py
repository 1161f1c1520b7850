from __future__ import annotations

import numpy as np
import pytest

from adaptd.daemon.core.naming import REGIME_NAMES, NamingRules, regime_name

NAMES = ("ret_z", "mean_fast_z", "mean_slow_z", "vol_ratio", "mom_5_z", "mom_60_z", "volume_z")


def rows(n: int = 20, **means: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((n, len(NAMES)))
    for name, mean in means.items():
        x[:, NAMES.index(name)] += mean
    return x


@pytest.mark.parametrize(
    ("means", "name"),
    [
        ({}, "sideways"),
        ({"mom_60_z": 1.5}, "trending up"),
        ({"mom_60_z": -1.5}, "trending down"),
        ({"mom_5_z": 3.0}, "sideways"),  # the longest horizon decides, not the shortest
        ({"vol_ratio": 0.5, "mom_60_z": 2.0}, "high volatility"),  # before the trend
    ],
)
def test_names_from_the_features_of_the_examples(means: dict, name: str) -> None:
    assert regime_name(rows(**means), NAMES) == name
    assert name in REGIME_NAMES


def test_one_extreme_return_names_the_regime_before_anything_else() -> None:
    x = rows(vol_ratio=0.5)
    x[7, 0] = -6.5
    assert regime_name(x, NAMES) == "extreme event"
    assert regime_name(x, NAMES, NamingRules(extreme_z=7.0)) == "high volatility"


def test_without_momentum_the_slow_mean_tells_the_trend() -> None:
    names = ("ret_z", "mean_slow_z")
    x = np.column_stack([np.zeros(10), np.full(10, -1.2)])
    assert regime_name(x, names) == "trending down"


def test_features_that_tell_nothing_give_no_name_and_bad_shapes_are_refused() -> None:
    assert regime_name(np.zeros((3, 2)), ("spread_z", "volume_z")) is None
    with pytest.raises(ValueError, match="x must be"):
        regime_name(np.zeros((3, 2)), NAMES)
