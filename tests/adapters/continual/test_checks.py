"""Tests for the shared constructor argument checks of the continual-learning strategies."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from adaptd.adapters.continual.checks import (
    in_unit_interval,
    integer,
    non_negative,
    one_of,
    optional_positive_int,
    positive,
    positive_int,
)
from adaptd.adapters.continual.ewc import EWC
from adaptd.adapters.continual.growth import Growth
from adaptd.adapters.continual.replay import ExperienceReplay


@pytest.mark.parametrize("value", [0, 0.0, 2, 3.5, math.inf])
def test_non_negative_returns_a_float(value: float) -> None:
    out = non_negative("lam", value)
    assert type(out) is float and out == value


@pytest.mark.parametrize("value", [-1, -1e-9, math.nan, True, "1", None])
def test_non_negative_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^lam must be a non-negative number, got "):
        non_negative("lam", value)


def test_positive() -> None:
    assert positive("xi", 1) == 1.0 and type(positive("xi", 1)) is float
    for value in (0, -2.0, math.nan, False):
        with pytest.raises(ValueError, match=r"^xi must be a positive number, got "):
            positive("xi", value)


def test_in_unit_interval_includes_both_ends() -> None:
    assert in_unit_interval("decay", 0) == 0.0 and in_unit_interval("decay", 1) == 1.0
    for value in (-0.1, 1.1, math.nan, True):
        with pytest.raises(ValueError, match=r"^decay must be a number in \[0, 1\], got "):
            in_unit_interval("decay", value)


def test_integer_accepts_any_int_but_not_bool_or_float() -> None:
    assert integer("seed", -7) == -7
    for value in (True, 1.0, "1"):
        with pytest.raises(ValueError, match=r"^seed must be an integer, got "):
            integer("seed", value)


def test_positive_int() -> None:
    assert positive_int("capacity", 1) == 1
    for value in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match=r"^capacity must be a positive integer, got "):
            positive_int("capacity", value)


def test_optional_positive_int() -> None:
    assert optional_positive_int("max_tasks", None) is None
    assert optional_positive_int("max_tasks", 3) == 3
    for value in (0, 1.5, False):
        with pytest.raises(ValueError, match=r"^max_tasks must be a positive integer or None, "):
            optional_positive_int("max_tasks", value)


def test_one_of_names_the_choices() -> None:
    assert one_of("store", "stream", ("after_task", "stream")) == "stream"
    message = "store must be one of ('after_task', 'stream'), got 'never'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        one_of("store", "never", ("after_task", "stream"))


def test_messages_reach_the_strategies_unchanged() -> None:
    with pytest.raises(ValueError, match=r"^lam must be a non-negative number, got -1$"):
        EWC(lam=-1)
    with pytest.raises(ValueError, match=r"^max_tasks must be a positive integer or None, got 0$"):
        EWC(max_tasks=0)
    with pytest.raises(ValueError, match=r"^batch_size must be a positive integer, got True$"):
        ExperienceReplay(batch_size=True)
    with pytest.raises(ValueError, match=r"^patience must be a positive integer, got 0$"):
        Growth(patience=0)


def test_strategies_keep_the_validated_values() -> None:
    ewc = EWC(lam=3, max_examples=7, seed=5, max_tasks=2)
    assert (ewc.lam, ewc.max_examples, ewc.seed, ewc.max_tasks) == (3.0, 7, 5, 2)
    assert type(ewc.lam) is float
    replay = ExperienceReplay(10, batch_size=4, sampling="stratified", store="stream")
    assert (replay.batch_size, replay.sampling, replay.store) == (4, "stratified", "stream")
