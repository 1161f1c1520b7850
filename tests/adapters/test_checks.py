"""The library's argument checks: what each accepts and returns, and that its message names
the argument and the bad value as the constructors have always worded it."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from adaptd.adapters.checks import (
    flag,
    in_interval,
    in_unit_interval,
    int_at_least,
    int_in_range,
    integer,
    is_int,
    non_negative,
    non_negative_int,
    one_of,
    positive,
    positive_finite,
    positive_int,
    tail_levels,
)
from adaptd.adapters.continual.ewc import EWC
from adaptd.adapters.continual.growth import Growth
from adaptd.adapters.continual.memory import StratifiedSampler
from adaptd.adapters.continual.replay import ExperienceReplay
from adaptd.adapters.meta import MetaSGD, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks


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


def test_tail_levels_are_a_tuple_of_probabilities_below_a_half() -> None:
    assert tail_levels("levels", [0.01, np.float64(0.05)]) == (0.01, 0.05)
    assert type(tail_levels("levels", (1e-6,))[0]) is float
    for bad in ([], [0.0], [0.5], [0.01, math.nan], [-0.01]):
        with pytest.raises(ValueError, match="levels must be tail probabilities in"):
            tail_levels("levels", bad)


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
    assert positive_int("max_tasks", None, optional=True) is None
    assert positive_int("max_tasks", 3, optional=True) == 3
    for value in (0, 1.5, False):
        with pytest.raises(ValueError, match=r"^max_tasks must be a positive integer or None, "):
            positive_int("max_tasks", value, optional=True)
    with pytest.raises(ValueError, match=r"^max_tasks must be a positive integer, got None$"):
        positive_int("max_tasks", None)


def test_numpy_integers_are_integers_and_come_back_as_int() -> None:
    for check in (integer, positive_int, non_negative_int):
        out = check("n", np.int64(4))
        assert out == 4 and type(out) is int
    assert is_int(np.int32(1)) and not is_int(np.float64(1.0)) and not is_int(np.bool_(True))


def test_non_negative_int() -> None:
    assert non_negative_int("steps", 0) == 0
    assert non_negative_int("max_lateral", None, optional=True) is None
    for value in (-1, 0.5, True, "0"):
        with pytest.raises(ValueError, match=r"^steps must be a non-negative integer, got "):
            non_negative_int("steps", value)
    with pytest.raises(ValueError, match=r"^lag must be a non-negative integer or None, got -1$"):
        non_negative_int("lag", -1, optional=True)


def test_int_at_least_and_int_in_range() -> None:
    assert int_at_least("eta", 2, 2) == 2
    with pytest.raises(ValueError, match=r"^eta must be an integer >= 2, got 1$"):
        int_at_least("eta", 1, 2)
    assert int_in_range("k", 4, 0, 4) == 4
    for value in (-1, 5, 2.0, True):
        with pytest.raises(ValueError, match=r"^k must be an integer in \[0, 4\], got "):
            int_in_range("k", value, 0, 4)


def test_positive_finite() -> None:
    assert positive_finite("lr", 1) == 1.0 and type(positive_finite("lr", 1)) is float
    for value in (0, -0.1, math.inf, math.nan, True, "0.1", None):
        with pytest.raises(ValueError, match=r"^lr must be a positive finite number, got "):
            positive_finite("lr", value)


def test_in_interval_says_which_ends_are_included() -> None:
    assert in_interval("prune", 0.5, 0, 1, closed=(False, False)) == 0.5
    for value, closed, interval in [
        (0, (False, False), r"\(0, 1\)"),
        (1, (True, False), r"\[0, 1\)"),
        (0, (False, True), r"\(0, 1\]"),
        (2, (True, True), r"\[0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=rf"^f must be a number in {interval}, got "):
            in_interval("f", value, 0, 1, closed=closed)


def test_flag_accepts_only_a_bool() -> None:
    assert flag("per_step", True) is True
    for value in (0, 1, "yes", None):
        with pytest.raises(ValueError, match=r"^per_step must be True or False, got "):
            flag("per_step", value)


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
    with pytest.raises(ValueError, match=r"^inner_lr must be a positive finite number, got 0$"):
        Reptile(PolicyNet(2), inner_lr=0)
    with pytest.raises(ValueError, match=r"^per_step must be True or False, got 1$"):
        MetaSGD(PolicyNet(2), per_step=1)
    with pytest.raises(ValueError, match=r"^in_dim must be a positive integer, got 0$"):
        PolicyNet(0)
    with pytest.raises(ValueError, match=r"^pool_size must be a positive integer or None, got 0"):
        SinusoidTasks(pool_size=0)


def test_strategies_keep_the_validated_values() -> None:
    ewc = EWC(lam=3, max_examples=7, seed=5, max_tasks=2)
    assert (ewc.lam, ewc.max_examples, ewc.seed, ewc.max_tasks) == (3.0, 7, 5, 2)
    assert type(ewc.lam) is float
    replay = ExperienceReplay(10, batch_size=4, sampler=StratifiedSampler(), store="stream")
    assert (replay.batch_size, replay.sampler, replay.store) == (4, StratifiedSampler(), "stream")
