"""The strategy-selection task: its reward, label, loss and baseline against explicit sums."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from adaptd.daemon.core.tasks.registry import build
from adaptd.daemon.core.tasks.selection import (
    EqualWeight,
    SelectionAnchor,
    StrategyTask,
    rewards,
)


def tick(lp: float, vol: float = 0.01, fast_var: float = 1e-4) -> SimpleNamespace:
    return SimpleNamespace(log_price=lp, vol=vol, fast_var=fast_var)


def test_the_reward_is_net_of_costs_penalised_for_losses_and_per_unit_of_risk() -> None:
    a = SelectionAnchor(1.0, 1 / (0.02 * math.sqrt(4)), (0.0, 2.0, -1.0), (0.0, 1.0, -1.0))
    u = rewards(a, 1.03, cost=0.0005, penalty=0.5)
    # long 2: 0.06 earned, 0.0005 of cost for one unit of turnover, over vol*sqrt(H) = 0.04
    assert u[1] == pytest.approx((0.06 - 0.0005) / 0.04)
    # short 1: lost 0.03, penalised by half again, no turnover
    assert u[2] == pytest.approx((-0.03 - 0.5 * 0.03) / 0.04)
    assert u[0] == 0.0


def test_the_label_is_the_best_strategy_and_flat_when_nothing_earned_its_cost() -> None:
    task = StrategyTask(horizon=1, clip=10.0, trend=(2,), reversal=(1,), cost_bps=5.0)
    rule = task.label_rule()
    for lp in (0.0, 0.01, 0.03):
        a = rule.anchor(tick(lp))
    assert task.strategies[int(rule.label(a, tick(0.05)))] == "long"  # long ties trend: first
    assert task.strategies[int(rule.label(a, tick(0.0)))] == "reversal_1"
    b = rule.anchor(tick(0.03))  # no move: the trend and long traded nothing, pay nothing
    assert task.strategies[int(rule.label(b, tick(0.03)))] == "flat"


def test_numpy_cross_entropy_and_the_equal_weight_baseline() -> None:
    task = StrategyTask(horizon=1, clip=10.0, ensemble="equal")
    k = task.head.out_dim
    assert k == len(task.strategies) == 5
    z = np.array([[2.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 5])
    got = task.losses(z, np.array([0.0, 3.0]))
    expect = [-math.log(math.e**2 / (math.e**2 + 4)), math.log(5)]
    assert got.tolist() == pytest.approx(expect)
    assert EqualWeight(k).losses(np.zeros(3)).tolist() == pytest.approx([math.log(5)] * 3)
    assert task.baseline().constant_output == 0.0  # zero logits: the equal weights


def test_options_come_from_the_settings_and_bad_ones_name_themselves() -> None:
    (task,) = build(
        ("strategy",), horizon=2, clip=10.0, options={"strategy": {"trend": [3], "cost_bps": 1}}
    )
    assert task.strategies == ("flat", "long", "trend_3", "reversal_5")
    assert task.head.out_dim == 4
    with pytest.raises(ValueError, match="cost_bps"):
        StrategyTask(horizon=1, clip=10.0, cost_bps=-1.0)
    with pytest.raises(ValueError, match="leverage_cap"):
        StrategyTask(horizon=1, clip=10.0, leverage_cap=0.0)


def test_the_message_defines_every_strategy_and_the_position() -> None:
    d = StrategyTask(horizon=1, clip=10.0).describe()
    json.dumps(d)
    assert d["strategies"]["names"] == d["label"]["classes"]
    assert set(d["strategies"]["positions"]) == {"flat", "long", "trend_h", "reversal_h"}
    assert d["link"] == "softmax" and d["baseline"] == "Hedge ensemble"  # the default
    equal = StrategyTask(horizon=1, clip=10.0, ensemble="equal").describe()
    assert equal["baseline"] == "equal-weight ensemble" and "hedge" not in equal


def test_after_a_trend_reversal_the_labels_move_from_long_to_the_trend() -> None:
    task = StrategyTask(horizon=1, clip=10.0, trend=(5,), reversal=(), cost_bps=0.0)
    rule = task.label_rule()
    prices = [0.01 * i for i in range(60)] + [0.59 - 0.01 * i for i in range(1, 60)]
    anchors = [rule.anchor(tick(p)) for p in prices]
    pairs = zip(anchors[:-1], prices[1:], strict=True)
    names = [task.strategies[int(rule.label(a, tick(p)))] for a, p in pairs]
    assert set(names[10:58]) == {"long"}
    assert set(names[70:]) == {"trend_5"}  # the trend has turned short; the long loses


@pytest.mark.parametrize(("penalty", "expect"), [(0.0, "long"), (0.5, "flat")])
def test_a_gain_after_a_deep_fall_is_penalised_along_the_path(penalty: float, expect: str) -> None:
    task = StrategyTask(horizon=2, clip=10.0, trend=(1,), reversal=(), drawdown_penalty=penalty)
    rule = task.label_rule()
    first = rule.anchor(tick(0.0))
    rule.anchor(tick(-0.05))  # the labeler anchors each event after labelling the due one
    assert task.strategies[int(rule.label(first, tick(0.01)))] == expect
    # Without the path (calls out of order), the two ends alone: no fall, the long wins.
    other = StrategyTask(horizon=2, clip=10.0, trend=(1,), reversal=(), drawdown_penalty=0.5)
    lone = other.label_rule()
    a = lone.anchor(tick(0.0))
    assert other.strategies[int(lone.label(a, tick(0.01)))] == "long"


def test_one_step_rewards_are_the_rule_s_rewards_for_many_events_at_once() -> None:
    from adaptd.daemon.core.strategies import one_step_rewards

    rng = np.random.default_rng(2)
    p, q = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    moves, vol = rng.normal(0, 0.01, 30), rng.uniform(0.005, 0.02, 30)
    many = one_step_rewards(p, q, moves, 1 / vol, cost=0.0003, penalty=0.7)
    for t in range(30):
        a = SelectionAnchor(1.0, 1 / vol[t], tuple(p[t]), tuple(q[t]))
        assert many[t] == pytest.approx(rewards(a, 1.0 + moves[t], 0.0003, 0.7), rel=1e-12)


def test_with_hedge_the_examples_end_with_its_log_weights_and_it_is_the_baseline() -> None:
    from adaptd.daemon.core.labels import DelayedLabeler
    from adaptd.daemon.core.state_format import dumps, loads
    from adaptd.daemon.core.tasks.selection import HedgeEnsemble, hedge_inputs

    # A rate at which the weights stay apart over five events (at the default, 30, the
    # trailing strategies' log-weights fall by tens with the first move).
    task = StrategyTask(
        horizon=1, clip=10.0, trend=(2,), reversal=(), ensemble="hedge", hedge_eta=1.0
    )
    names = task.strategies
    assert task.inputs == hedge_inputs(names) == tuple(f"hedge_log_w_{n}" for n in names)
    assert task.head.skip == task.head.out_dim == 3
    assert StrategyTask(horizon=1, clip=10.0, ensemble="equal").head.skip == 0
    labeler = DelayedLabeler(task.label_rule())
    examples = []
    for i, lp in enumerate((0.0, 0.01, 0.03, 0.06, 0.05)):
        example = labeler.push(i, tick(lp), (1.0, 2.0), offset=i, ts_ms=i)
        examples.append(example) if example is not None else None
        x = labeler.formed_at(i)
        assert x is not None and x[:2] == (1.0, 2.0) and len(x) == 5
        log_w = labeler.rule.extra()
        assert x[2:] == log_w and sum(math.exp(v) for v in log_w) == pytest.approx(1.0)
    # The rise paid long and the trend: they outweigh flat after it.
    assert log_w[1] > log_w[0] and log_w[2] > log_w[0]

    baseline = task.baseline()
    assert isinstance(baseline, HedgeEnsemble) and baseline.constant_output == 0.0
    x = np.array([e.x for e in examples])
    y = np.array([e.y for e in examples])
    np.testing.assert_allclose(baseline.losses(y, x), task.losses(x[:, 2:], y))
    with pytest.raises(ValueError, match="inputs"):
        baseline.losses(y)

    described = task.describe()
    assert described["baseline"] == "Hedge ensemble"
    assert described["hedge"]["inputs"] == list(task.inputs)
    assert described["hedge"]["eta"] == task.hedge_eta
    json.dumps(described)

    # The rule, Hedge's scores with it, survives the stored form; one stored before Hedge
    # existed comes back without one.
    rule = loads(dumps(labeler.rule))
    assert rule.hedge.score == labeler.rule.hedge.score and rule.extra() == log_w
    old = StrategyTask(horizon=1, clip=10.0, ensemble="equal").label_rule()
    state = {name: getattr(old, name) for name in ("_path", "book", "cost", "horizon", "penalty")}
    fresh = type(old).__new__(type(old))
    fresh.__setstate__((None, state))
    assert fresh.hedge is None and fresh.inputs == ()


def test_an_unknown_ensemble_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ensemble"):
        StrategyTask(horizon=1, clip=10.0, ensemble="best")
    with pytest.raises(ValueError, match="hedge_discount"):
        StrategyTask(horizon=1, clip=10.0, ensemble="hedge", hedge_discount=0.0)
    with pytest.raises(ValueError, match="hedge_penalty"):
        StrategyTask(horizon=1, clip=10.0, ensemble="hedge", hedge_penalty=-0.1)


def _hedge_weights(penalty: float, drift: float, seed: int = 0) -> dict[str, float]:
    """Hedge's weights, remembering every event, after 2,000 events of a random walk with
    ``drift`` (in units of its volatility a step), fed through the strategy task's rule."""
    task = StrategyTask(
        horizon=1,
        clip=10.0,
        trend=(),
        reversal=(),
        ensemble="hedge",
        hedge_eta=0.1,
        hedge_discount=1.0,
        hedge_penalty=penalty,
    )
    rule = task.label_rule()
    rng = np.random.default_rng(seed)
    lp = np.cumsum(0.01 * (drift + rng.standard_normal(2_000)))
    for price in lp:
        rule.anchor(SimpleNamespace(log_price=float(price), vol=0.01, fast_var=1e-4))
    return dict(zip(task.strategies, np.exp(rule.extra()).tolist(), strict=True))


def test_hedge_is_penalised_by_its_own_setting_and_a_loss_penalty_favours_flat() -> None:
    task = StrategyTask(horizon=1, clip=10.0, ensemble="hedge", hedge_penalty=0.3)
    assert task.label_rule().hedge.penalty == 0.3 and task.label_rule().penalty == 0.5
    assert task.describe()["hedge"]["penalty"] == 0.3
    assert StrategyTask(horizon=1, clip=10.0, ensemble="hedge").label_rule().hedge.penalty == 0.0
    # A long position that earns 0.1 of its volatility a step: without a penalty on its
    # losses Hedge weights it; with the label's 0.5, each step's expected reward is
    # 0.1 - 0.5 * 0.35 < 0, below flat's 0, and Hedge moves to flat.
    for seed in range(3):
        plain, penalised = _hedge_weights(0.0, 0.1, seed), _hedge_weights(0.5, 0.1, seed)
        assert plain["long"] > 0.99 > plain["flat"]
        assert penalised["flat"] > 0.99 > penalised["long"]
