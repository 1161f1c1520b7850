"""The risk task: realised-variance labels in units of the EWMA's expectation, QLIKE, the
EWMA itself as the baseline, and a message from which a subscriber computes VaR and ES."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from adaptd.adapters.forecasting import normal_var_es, qlike
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.features import FeatureExtractor
from adaptd.daemon.core.labels import DelayedLabeler
from adaptd.daemon.core.tasks.risk import RiskTask, risk_of
from adaptd.daemon.service.configs import tasks_of


@pytest.mark.parametrize("reference", ["garch", "ewma"])
def test_labels_are_realised_variance_over_the_references_expectation(reference: str) -> None:
    settings = load_settings(environ={}, features={"warmup_events": 60, "label_horizon": 3})
    fx = FeatureExtractor(settings.features)
    # No event times: the periodicity has one bucket, whose factor is exactly 1.
    task = RiskTask(horizon=3, clip=10.0, reference=reference)
    labeler = DelayedLabeler(task.label_rule())
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    refs, examples = {}, []
    s2 = math.nan
    for i, p in enumerate(prices):
        x = fx.update(float(p))
        if x is not None:
            # The reference, written out: the GARCH recursion starts at the fast EWMA.
            if reference == "ewma" or s2 != s2:
                s2 = fx.fast_var
            else:
                s2 = (1 - 0.05 - 0.93) * fx.vol**2 + 0.05 * fx.ret**2 + 0.93 * s2
            refs[i] = s2
        ex = labeler.push(i, fx, x, offset=i, ts_ms=i)
        if ex is not None:
            examples.append(ex)
    assert labeler.rule.reference == pytest.approx(s2, rel=1e-12)
    rets = np.diff(np.log(prices))
    for ex in examples[:50]:
        t = ex.index
        realised = float(np.sum(rets[t : t + 3] ** 2))  # returns of events t+1..t+3
        assert ex.y == pytest.approx(max(realised / (refs[t] * 3), 0.01), rel=1e-9)


def test_the_garch_reference_reverts_to_the_slow_variance_after_a_shock() -> None:
    rule = RiskTask(horizon=1, clip=10.0, reference="garch").label_rule()
    calm = SimpleNamespace(sq_sum=0.0, fast_var=1e-4, vol=0.01, ret=0.01, ts_ms=0)  # r^2 = vol^2
    rule.anchor(calm)
    rule.anchor(SimpleNamespace(sq_sum=0.0, fast_var=1e-3, vol=0.01, ret=0.1, ts_ms=0))
    shocked = rule.reference
    assert shocked == pytest.approx(0.02 * 1e-4 + 0.05 * 0.01 + 0.93 * 1e-4)
    for _ in range(200):
        rule.anchor(calm)
    assert rule.reference == pytest.approx(1e-4, rel=1e-3)  # back at vol^2
    assert shocked > 5 * rule.reference
    with pytest.raises(ValueError, match="reference"):
        RiskTask(horizon=1, clip=10.0, reference="garchy")
    with pytest.raises(ValueError, match="a \\+ b < 1"):
        RiskTask(horizon=1, clip=10.0, garch_a=0.5, garch_b=0.5)


def test_a_rule_snapshotted_before_the_garch_reference_keeps_the_ewma() -> None:
    rule = RiskTask(horizon=1, clip=10.0).label_rule()
    old = {k: getattr(rule, k) for k in ("cap", "floor", "floored", "horizon", "labelled")}
    restored = type(rule).__new__(type(rule))
    restored.__setstate__((None, old))
    assert restored.garch is None
    a = restored.anchor(SimpleNamespace(sq_sum=1.0, fast_var=2e-4, vol=0.01, ret=0.0))
    assert a == (1.0, pytest.approx(1 / 2e-4))


def test_a_rule_snapshotted_before_the_fitted_reference_keeps_its_fixed_recursion() -> None:
    rule = RiskTask(horizon=1, clip=10.0, reference="garch").label_rule()
    old = {k: getattr(rule, k) for k in ("cap", "floor", "floored", "horizon", "labelled")}
    old |= {"garch": (0.05, 0.93), "reference": 2e-4}  # the recursion's state was the reference
    restored = type(rule).__new__(type(rule))
    restored.__setstate__((None, old))
    assert restored.fit is None and restored.season is None
    restored.anchor(SimpleNamespace(sq_sum=1.0, fast_var=1e-4, vol=0.01, ret=0.02, ts_ms=0))
    assert restored.reference == pytest.approx(0.02 * 1e-4 + 0.05 * 4e-4 + 0.93 * 2e-4)


def test_zero_moves_are_floored_and_counted_and_crashes_capped() -> None:
    rule = RiskTask(horizon=1, clip=5.0, floor=0.05, reference="ewma").label_rule()
    anchor = rule.anchor(SimpleNamespace(sq_sum=1.0, fast_var=0.0001))
    assert rule.label(anchor, SimpleNamespace(sq_sum=1.0)) == 0.05
    assert rule.label(anchor, SimpleNamespace(sq_sum=1.0 + 0.0001)) == pytest.approx(1.0)
    assert rule.label(anchor, SimpleNamespace(sq_sum=1.5)) == 5.0  # the clip
    assert (rule.floored, rule.labelled) == (1, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": (0.5,)}, "levels"),
        ({"levels": ()}, "levels"),
        ({"floor": 1.5}, "floor < 1 < cap"),
        ({"clip": 0.5}, "floor < 1 < cap"),
        ({"floor": 0.0}, "floor"),
    ],
)
def test_bad_options_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RiskTask(**{"horizon": 2, "clip": 10.0, **kwargs})


def test_the_baseline_is_the_ewma_forecast_itself() -> None:
    task = RiskTask(horizon=2, clip=10.0)
    y = np.array([0.5, 1.0, 3.0])
    np.testing.assert_allclose(task.baseline().losses(y), qlike(y, np.ones(3)))
    np.testing.assert_allclose(task.losses(np.zeros(3), y), task.baseline().losses(y))


def test_a_subscriber_computes_the_forecast_var_and_es_from_the_message_alone() -> None:
    task = RiskTask(horizon=5, clip=10.0, levels=(0.01, 0.025))
    described = task.describe()
    forecast = described["forecast"]
    assert described["link"] == "exp" and forecast["levels"] == [0.01, 0.025]
    s2_t, output = 0.012**2, 0.3
    variance = s2_t * 5 * math.exp(output)  # "s2_t * H * exp(output)"
    risk = risk_of(variance, task.levels)
    for level in task.levels:
        var, es = normal_var_es(variance, level)
        assert risk[f"{level:g}"] == {
            "var": pytest.approx(float(var)),
            "es": pytest.approx(float(es)),
        }
    assert risk["0.01"]["var"] == pytest.approx(2.3263 * math.sqrt(variance), rel=1e-4)


def test_levels_are_set_through_task_options_and_bad_ones_name_the_setting() -> None:
    settings = load_settings(
        environ={},
        adaptation={"tasks": ["return", "risk"], "task_options": {"risk": {"levels": [0.02]}}},
    )
    (_, risk) = tasks_of(settings)
    assert risk.levels == (0.02,) and risk.horizon == settings.features.label_horizon
    with pytest.raises(Exception, match=r"adaptation.*task_options of 'risk'.*levels"):
        load_settings(
            environ={},
            adaptation={"tasks": ["risk"], "task_options": {"risk": {"levels": [0.9]}}},
        )
    with pytest.raises(Exception, match=r"task_options .*not configured: \['risk'\]"):
        load_settings(environ={}, adaptation={"task_options": {"risk": {}}})
    with pytest.raises(Exception, match="unexpected keyword"):
        load_settings(
            environ={}, adaptation={"tasks": ["risk"], "task_options": {"risk": {"nope": 1}}}
        )


def test_a_student_t_tail_is_described_and_computed_from_the_message() -> None:
    from adaptd.adapters.forecasting import t_var_es

    task = RiskTask(horizon=1, clip=10.0, dof=5.0)
    forecast = task.describe()["forecast"]
    assert forecast["dof"] == 5.0 and forecast["distribution"].startswith("Student t")
    variance = 2e-4
    got = risk_of(variance, task.levels, task.dof)
    for level in task.levels:
        var, es = t_var_es(variance, level, 5.0)
        assert got[f"{level:g}"] == {
            "var": pytest.approx(float(var)),
            "es": pytest.approx(float(es)),
        }
    # The formula in the message, by hand: q = T^-1(a), s = sqrt(variance * (dof - 2) / dof).
    from scipy import stats

    q, s = stats.t.ppf(0.01, 5.0), math.sqrt(variance * 3 / 5)
    assert got["0.01"]["var"] == pytest.approx(-q * s)
    with pytest.raises(ValueError, match="dof"):
        RiskTask(horizon=1, clip=10.0, dof=2.0)
    assert "dof" not in RiskTask(horizon=1, clip=10.0).describe()["forecast"]


def test_a_baseline_pickled_before_the_garch_reference_keeps_its_name() -> None:
    from adaptd.daemon.core.tasks.risk import EwmaVariance

    old = EwmaVariance.__new__(EwmaVariance)  # what unpickling an instance with no state gives
    assert old.name == "EWMA variance"
    assert RiskTask(horizon=1, clip=10.0).baseline().name == "GARCH variance"
    assert RiskTask(horizon=1, clip=10.0, reference="ewma").baseline().name == "EWMA variance"


def test_the_calibrated_var_is_computed_from_the_message_alone() -> None:
    import re

    from scipy import stats

    task = RiskTask(horizon=2, clip=10.0)  # the defaults: a normal tail, calibrated
    forecast = task.describe()["forecast"]
    gamma = forecast["calibration"]["gamma"]
    assert gamma == 0.005 and "j + H <= t" in forecast["calibration"]["a_t"]
    low, high = (
        float(v) for v in re.fullmatch(r"min\(max\(a_t, (.+)\), (.+)\)", forecast["p"]).groups()
    )
    rng = np.random.default_rng(5)
    n, h = 400, 2
    r = rng.standard_t(4, n + h) * 0.01
    outcome = np.array([r[t + 1 : t + 1 + h].sum() for t in range(n)])  # r[t+1..t+H]
    variance = np.full(n, 1.2e-4)
    variance[:5] = np.nan  # the features' warm-up: no forecast, no VaR
    var, es = task.tail(outcome, variance)
    for t in range(5, n):
        known = range(5, t - h + 1)  # j + H <= t
        a = np.array(forecast["levels"])
        v = np.array([[outcome[j] < -var[j, k] for k in range(len(a))] for j in known]).sum(axis=0)
        p = np.clip(a + gamma * (a * len(known) - v), low, high)  # "a + gamma * (a * m_t - v_t)"
        q = stats.norm.ppf(p)
        np.testing.assert_allclose(var[t], -q * np.sqrt(variance[t]), rtol=1e-12)
        np.testing.assert_allclose(es[t], stats.norm.pdf(q) / p * np.sqrt(variance[t]), rtol=1e-12)
    assert np.isnan(var[:5]).all()


def test_without_calibration_the_var_is_at_the_levels() -> None:
    task = RiskTask(horizon=1, clip=10.0, calibration=None)
    forecast = task.describe()["forecast"]
    assert forecast["p"] == "a" and "calibration" not in forecast
    variance = np.array([1e-4, 3e-4])
    var, es = task.tail(np.array([-1.0, -1.0]), variance)  # violations change nothing
    for k, level in enumerate(task.levels):
        want = risk_of(float(variance[1]), task.levels)[f"{level:g}"]
        assert (var[1, k], es[1, k]) == pytest.approx((want["var"], want["es"]))
    with pytest.raises(ValueError, match="calibration"):
        RiskTask(horizon=1, clip=10.0, calibration=1.5)
    with pytest.raises(Exception, match=r"task_options of 'risk'.*calibration"):
        load_settings(
            environ={},
            adaptation={"tasks": ["risk"], "task_options": {"risk": {"calibration": 0.0}}},
        )
