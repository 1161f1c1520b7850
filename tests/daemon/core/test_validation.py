from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from state_support import stored

from adaptd.daemon.core.validation import (
    Retirement,
    ValidationParams,
    Validator,
    constant_weights,
)


def test_a_policy_as_good_as_its_baseline_is_rarely_retired() -> None:
    # 200 policies as good as the baseline, each tested after every batch of 10 examples
    # over 1,000 examples: z = 3 keeps false retirements rare despite the repeated looks.
    rng = np.random.default_rng(0)
    retired = 0
    for _ in range(200):
        v = Validator(ValidationParams(z=3.0, min_examples=30))
        v.watch(1)
        for _ in range(100):
            base = rng.gamma(1.0, 1.0, 10)
            if v.update(base + rng.normal(0, 0.5, 10), base) is not None:
                retired += 1
                break
    assert retired <= 8  # under 4 %


def test_a_losing_policy_is_retired_with_the_evidence() -> None:
    rng = np.random.default_rng(1)
    v = Validator(ValidationParams(z=3.0, min_examples=30))
    v.watch(5)
    verdict = None
    seen = []
    while verdict is None:
        base = rng.gamma(1.0, 1.0, 10)
        live = base + 0.3 + rng.normal(0, 0.5, 10)
        seen.append(live - base)
        verdict = v.update(live, base)
    d = np.concatenate(seen)
    assert verdict.version == 5 and verdict.examples == len(d) >= 30
    assert verdict.excess == pytest.approx(d.mean())
    assert verdict.standard_error == pytest.approx(stats.sem(d))
    assert verdict.excess > 3.0 * verdict.standard_error
    assert len(d) < 300  # a 0.3 excess at noise 0.5 is found within a few batches
    assert v.version == 0 and v.update(live, base) is None  # testing stopped


def test_nothing_is_tested_before_a_policy_is_watched_or_when_disabled() -> None:
    worse = (np.ones(50), np.zeros(50))
    assert Validator(ValidationParams()).update(*worse) is None
    off = Validator(ValidationParams(enabled=False))
    off.watch(2)
    assert off.update(*worse) is None
    v = Validator(ValidationParams(min_examples=30))
    v.watch(2)
    assert v.update(np.ones(29), np.zeros(29)) is None  # too few yet
    verdict = v.update(np.ones(1), np.zeros(1))
    assert verdict is not None and verdict.standard_error == 0.0
    assert "inf standard errors" in verdict.reason("zero forecast")


def test_a_new_policy_starts_a_new_test_and_the_state_pickles() -> None:
    v = Validator(ValidationParams(min_examples=5))
    v.watch(1)
    v.update(np.ones(4), np.zeros(4))
    v.watch(2)
    assert (v.version, v.n, v.sum) == (2, 0, 0.0)
    copy = stored(v)
    assert (copy.version, copy.params) == (2, v.params)


def test_the_reason_names_version_baseline_and_evidence() -> None:
    text = Retirement(7, 120, 0.25, 0.05).reason("EWMA variance")
    assert text == (
        "version 7 lost to the EWMA variance: mean loss 0.25 above it over 120 examples "
        "(5.0 standard errors)"
    )


def test_constant_weights_output_the_constant_whatever_the_input() -> None:
    from adaptd.adapters.serving import NumpyPolicy

    rng = np.random.default_rng(2)
    like = {
        "layers.0.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "layers.0.bias": rng.normal(size=4).astype(np.float32),
        "layers.2.weight": rng.normal(size=(1, 4)).astype(np.float32),
        "layers.2.bias": rng.normal(size=1).astype(np.float32),
    }
    policy = NumpyPolicy.from_params(constant_weights(like, math.log(2.0)))
    out = policy.predict(rng.normal(size=(5, 3)).astype(np.float32))
    np.testing.assert_allclose(out, math.log(2.0), rtol=1e-6)
    assert constant_weights(like, 0.0)["layers.0.weight"].dtype == np.float32


def test_a_policy_that_loses_on_almost_every_example_is_retired_despite_heavy_tails() -> None:
    # QLIKE of a variance forecast biased low: a small loss on most examples, and now and
    # then a huge one either way, which leaves the mean test blind for a long time.
    d = np.full(47, 0.5)
    d[10], d[30] = 300.0, -250.0
    v = Validator(ValidationParams(z=3.0, min_examples=30))
    v.watch(4)
    mean, se = d.mean(), stats.sem(d)
    assert 0 < mean < 3.0 * se  # the mean test alone would not retire it
    verdict = v.update(d, np.zeros_like(d))
    assert verdict is not None and verdict.worse == 46 and verdict.examples == 47
    assert "on 46 of 47 examples" in verdict.reason("EWMA variance")


def test_winning_on_average_is_never_retired_however_often_it_loses() -> None:
    d = np.full(200, 0.1)
    d[::20] = -5.0  # loses a little 95 % of the time, wins big: better on average
    v = Validator(ValidationParams(z=3.0, min_examples=30))
    v.watch(2)
    assert v.update(d, np.zeros_like(d)) is None


def test_a_policy_as_good_as_its_baseline_survives_many_looks() -> None:
    rng = np.random.default_rng(11)
    v = Validator(ValidationParams(z=3.0, min_examples=30))
    v.watch(1)
    for _ in range(400):  # 20,000 examples, a look after every 50
        d = rng.standard_t(3, 50)
        assert v.update(d, np.zeros_like(d)) is None


def test_a_validator_snapshotted_before_the_sign_test_restores_and_counts_on() -> None:
    v = Validator(ValidationParams(z=3.0, min_examples=30))
    v.watch(3)
    v.update(np.full(10, 0.2), np.zeros(10))
    state = v.__reduce_ex__(2)
    old = dict(state[2][1])
    del old["worse"]  # what the code before the sign test wrote
    restored = Validator.__new__(Validator)
    restored.__setstate__((None, old))
    assert restored.worse == 0 and restored.n == 10
    verdict = restored.update(np.full(40, 0.2), np.zeros(40))
    assert verdict is not None and verdict.examples == 50
