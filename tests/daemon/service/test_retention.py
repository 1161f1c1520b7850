"""Retention maths (reference over current loss per regime, mean and minimum over regimes)
and the monitor that evaluates held-out episodes, keeps references, exports gauges and warns
once per fall below the floor."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pytest
from structlog.testing import capture_logs

from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.service.retention import EVALUATION_CHUNK, RetentionMonitor, assess
from adaptd.daemon.service.worker import TorchWorker
from adaptd.replay.holdout import HeldRegime


class Ep(NamedTuple):
    id: str


def regime(key: str, ids: Sequence[str], reference: Mapping[str, float] = ()) -> HeldRegime:
    stream, _, number = key.rpartition(":")
    return HeldRegime(key, stream, int(number), tuple(Ep(i) for i in ids), dict(reference))


def test_retention_is_summed_reference_over_summed_current_loss() -> None:
    held = [regime("s:0", ["a", "b"], {"a": 1.0, "b": 3.0})]
    (r,) = assess(held, {"a": 2.0, "b": 3.0}).regimes
    assert r.ratio == pytest.approx(4.0 / 5.0)
    assert (r.key, r.stream, r.regime, r.episodes) == ("s:0", "s", 0, 2)


def test_first_evaluations_become_references_with_retention_one() -> None:
    held = [regime("s:0", ["a", "b"], {"a": 2.0}), regime("t:4", ["c"])]
    report = assess(held, {"a": 1.0, "b": 0.5, "c": 0.7})
    assert report.new_references == {"s:0": {"b": 0.5}, "t:4": {"c": 0.7}}
    ratios = {r.key: r.ratio for r in report.regimes}
    assert ratios == {"s:0": pytest.approx(2.5 / 1.5), "t:4": 1.0}
    assert report.mean == pytest.approx((2.5 / 1.5 + 1.0) / 2)
    assert report.minimum == 1.0


def test_missing_and_non_finite_losses_leave_episodes_and_regimes_out() -> None:
    held = [regime("s:0", ["a", "b"], {"a": 1.0, "b": 1.0}), regime("s:1", ["c"], {"c": 1.0})]
    report = assess(held, {"a": 2.0, "b": math.nan})
    (r,) = report.regimes
    assert (r.key, r.ratio, r.episodes) == ("s:0", 0.5, 1)
    empty = assess(held, {})
    assert empty.regimes == () and math.isnan(empty.mean) and math.isnan(empty.minimum)


def test_a_zero_loss_does_not_divide_by_zero() -> None:
    held = [regime("s:0", ["a"], {"a": 0.0}), regime("s:1", ["b"], {"b": 1.0})]
    report = assess(held, {"a": 0.0, "b": 0.0})
    assert report.regimes[0].ratio == 1.0
    assert math.isfinite(report.regimes[1].ratio) and report.regimes[1].ratio > 1e6


class FakeHoldout:
    def __init__(self, held: list[HeldRegime]) -> None:
        self.regimes = held
        self.saved: list[dict[str, dict[str, float]]] = []

    async def held(self) -> list[HeldRegime]:
        return [r._replace(reference=dict(r.reference)) for r in self.regimes]

    async def set_references(self, losses: Mapping[str, Mapping[str, float]]) -> int:
        self.saved.append({k: dict(v) for k, v in losses.items()})
        for i, r in enumerate(self.regimes):
            new = {**losses.get(r.key, {}), **r.reference}  # the first recorded stays
            self.regimes[i] = r._replace(reference=new)
        return sum(len(v) for v in losses.values())


class FakeLearner:
    def __init__(self) -> None:
        self.losses: dict[str, float] = {}
        self.calls: list[int] = []

    def evaluate(self, task: str, episodes: Sequence[Ep]) -> list[float]:
        assert task == "return"
        self.calls.append(len(episodes))
        return [self.losses[e.id] for e in episodes]


def gauge(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


async def test_the_monitor_keeps_references_exports_gauges_and_warns_once_per_fall() -> None:
    ids = [f"e{i}" for i in range(EVALUATION_CHUNK + 5)]
    holdout = FakeHoldout([regime("A:0", ids[:-1]), regime("B:1", ids[-1:])])
    learner, metrics, worker = FakeLearner(), Metrics(), TorchWorker(threads=None)
    monitor = RetentionMonitor(holdout, learner, worker, metrics, floor=0.8)  # type: ignore[arg-type]
    try:
        assert gauge(metrics, "adaptd_retention_regimes") == 0.0
        learner.losses = dict.fromkeys(ids, 1.0)
        with capture_logs() as logs:
            first = await monitor.evaluate()
        assert learner.calls == [EVALUATION_CHUNK, 5]  # chunked: adaptations slip in between
        assert first.mean == first.minimum == 1.0 and not logs
        assert holdout.saved == [{"A:0": dict.fromkeys(ids[:-1], 1.0), "B:1": {ids[-1]: 1.0}}]
        assert gauge(metrics, "adaptd_retention_regimes") == 2.0

        learner.losses[ids[-1]] = 2.0  # regime B's loss doubles: retention 0.5
        with capture_logs() as logs:
            await monitor.evaluate()
            await monitor.evaluate()  # still below: not logged again
        assert len(holdout.saved) == 1  # no new references
        assert gauge(metrics, "adaptd_retention_ratio", {"stat": "min"}) == 0.5
        assert gauge(metrics, "adaptd_retention_ratio", {"stat": "mean"}) == 0.75
        (warning,) = logs
        assert warning["log_level"] == "warning"
        assert (warning["stream"], warning["regime"], warning["ratio"]) == ("B", 1, 0.5)

        learner.losses[ids[-1]] = 1.0 / 0.85  # above the floor, not yet recovered: quiet
        with capture_logs() as logs:
            await monitor.evaluate()
        assert logs == [] and monitor.below == {"B:1"}
        learner.losses[ids[-1]] = 1.0 / 0.95  # above halfway from the floor to 1
        with capture_logs() as logs:
            await monitor.evaluate()
        assert [entry["log_level"] for entry in logs] == ["info"]
        assert monitor.below == set()

        holdout.regimes = []
        await monitor.evaluate()
        assert gauge(metrics, "adaptd_retention_regimes") == 0.0
        assert gauge(metrics, "adaptd_retention_ratio", {"stat": "min"}) is None
    finally:
        await worker.aclose()
