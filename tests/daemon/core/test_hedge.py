"""The stream's Hedge against the library's Hedge run over the task's one-event rewards."""

from __future__ import annotations

import numpy as np
import pytest

from adaptd.adapters.performance import Hedge
from adaptd.daemon.core.hedge import LOG_WEIGHT_FLOOR, OnlineHedge
from adaptd.daemon.core.strategies import StrategyBook, one_step_rewards


@pytest.mark.parametrize(("eta", "discount", "clip"), [(0.3, 0.99, 3.0), (1.0, 1.0, 0.5)])
def test_it_is_hedge_over_the_strategy_tasks_one_event_rewards(eta, discount, clip) -> None:
    rng = np.random.default_rng(4)
    n = 300
    lp = np.cumsum(rng.normal(0.0, 0.01, n)) + np.r_[np.zeros(150), np.linspace(0, 0.3, 150)]
    vol = 0.01 * np.exp(rng.normal(0.0, 0.1, n))
    fast_var = (0.01 * np.exp(rng.normal(0.0, 0.3, n))) ** 2
    cost, penalty = 2e-4, 0.5

    book = StrategyBook((3, 10), (2,), cap=2.0)
    online = OnlineHedge(5, eta, discount, clip, cost=cost, penalty=penalty)
    positions, logs = [], []
    for t in range(n):
        online.observe(lp[t], book.positions, book.previous, 1.0 / vol[t])
        positions.append(book.update(lp[t], vol[t], fast_var[t]))
        logs.append(online.log_weights())

    # The reference: rewards of every event at once, then the library's Hedge.
    p = np.array(positions)
    previous = np.vstack([np.zeros((1, 5)), p[:-1]])
    u = one_step_rewards(p[:-1], previous[:-1], np.diff(lp), 1.0 / vol[:-1], cost, penalty)
    reference = Hedge(5, eta=eta, discount=discount)
    for t in range(n):
        # A weight below the floor's 4e-44 is reported at the floor.
        np.testing.assert_allclose(np.exp(logs[t]), reference.weights(), rtol=1e-9, atol=3e-9)
        if t < n - 1:
            reference.update(np.clip(u[t], -clip, clip))
    assert np.ptp(np.exp(logs[-1])) > 0.05  # the trend made the weights differ


def test_its_log_weights_are_normalised_and_its_parameters_checked() -> None:
    h = OnlineHedge(3, eta=2.0, discount=0.9, clip=1.0)
    h.score = [1000.0, 0.0, -1000.0]  # no overflow
    w = np.exp(h.log_weights())
    assert w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(1.0)
    # -2,000 and -4,000 unfloored: bounded inputs for the network.
    assert h.log_weights()[1:] == (LOG_WEIGHT_FLOOR, LOG_WEIGHT_FLOOR) == (-100.0, -100.0)
    for kwargs, named in [
        ({"eta": 0.0}, "hedge_eta"),
        ({"discount": 1.5}, "hedge_discount"),
        ({"clip": -1.0}, "hedge_clip"),
    ]:
        with pytest.raises(ValueError, match=named):
            OnlineHedge(3, **{"eta": 1.0, "discount": 1.0, "clip": 1.0, **kwargs})
