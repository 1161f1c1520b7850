"""The detection benchmark: its series are on TCPD's grid, its leave-one-out choice never
sees the series it scores, and its detectors run online."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adaptd.adapters.changepoints import covering, f1_score
from adaptd.adapters.tasks.series import load as load_market
from adaptd.daemon.core.detectors import Alarm
from bench.detect.__main__ import evaluate
from bench.detect.data import Series, load_series, published, tcpd_annotations
from bench.detect.markets import TCPD_NAMES, _first_row, _on_grid
from bench.detect.runner import CANDIDATES, Candidate, detect, inputs, locations


@pytest.fixture(scope="module")
def series() -> list[Series]:
    return load_series()


def test_every_series_is_on_the_grid_of_its_annotations(series: list[Series]) -> None:
    # The published zero baseline's cover depends on n_obs alone: reproducing it shows that
    # the two series rebuilt from river's files have TCPD's length.
    zero = published("default_cover")
    assert {s.name for s in series} >= {"apple", "bitcoin", "brent_spot", "nile"}
    for s in series:
        assert covering(s.annotations, [], s.n_obs) == pytest.approx(
            zero[s.name]["zero"], abs=1e-12
        )
        assert np.isfinite(s.values).all()
    by_name = {s.name: s for s in series}
    assert not by_name["apple"].univariate and not by_name["run_log"].univariate
    assert sum(s.univariate for s in series) == 32


def test_leave_one_out_chooses_on_the_other_series_only() -> None:
    # Four series; one configuration finds the change of s0 only, the other the rest.
    rows = {"s0": [30], "s1": [40], "s2": [50], "s3": [60]}
    made: list[Any] = []

    class Oracle:
        name = "oracle"

        def __init__(self, finds: tuple[str, ...]) -> None:
            self.finds, self.i, self.n = finds, 0, 0
            made.append(self)

        def reset(self) -> None:
            self.i = 0

        def update(self, x: float) -> Alarm | None:
            # The series' name is coded in its first value.
            if self.i == 0:
                self.name_of = f"s{int(x)}"
            self.i += 1
            for at in rows[self.name_of] if self.name_of in self.finds else []:
                if self.i - 1 == at + 2:
                    return Alarm(self.i - 1, at, 1.0)
            return None

    def series_(k: int) -> Series:
        values = np.zeros((100, 1))
        values[0, 0] = k
        return Series(f"s{k}", values, {"1": rows[f"s{k}"]}, "test", 1)

    rest = ("s1", "s2", "s3")
    candidate = Candidate("oracle", Oracle, {"finds": ("s0",)}, {"finds": (("s0",), rest)})
    result = evaluate(candidate, [series_(k) for k in range(4)])["series"]
    assert result["s0"]["default"]["f1"] == 1.0
    # Held out, s0 gets the configuration that is best on the others: it misses s0's change.
    assert result["s0"]["loo"]["config"] == {"finds": rest}
    assert result["s0"]["loo"]["f1"] < 1.0
    assert all(result[name]["loo"]["f1"] == 1.0 for name in rest)


def test_every_detector_runs_online_and_reports_changes_inside_the_series() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(600)
    x[300:] += 4.0
    values = x[:, None]
    for name, candidate in CANDIDATES.items():
        alarms = detect(candidate, candidate.default, values)
        assert all(0 <= a.location <= a.index < len(x) for a in alarms), name
        found = locations(alarms, len(x))
        assert any(abs(c - 300) <= 30 for c in found), (name, found)
        # Online: the alarms up to any point do not depend on what comes after it.
        early = detect(candidate, candidate.default, values[:320])
        assert early == [a for a in alarms if a.index < 320], name
    score = f1_score({"1": [300]}, [300])
    assert score == 1.0


def test_inputs_are_the_level_or_its_differences() -> None:
    values = np.array([[1.0], [3.0], [6.0]])
    assert inputs(values, "level").tolist() == [1.0, 3.0, 6.0]
    assert inputs(values, "diff").tolist() == [0.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="input"):
        inputs(values, "log")


@pytest.mark.parametrize("name", ["apple", "bitcoin", "brent"])
def test_the_daemons_shifts_are_scored_on_tcpds_grid(name: str) -> None:
    market = load_market(name)
    first, step = _first_row(name)
    tcpd = tcpd_annotations()[TCPD_NAMES[name]]
    for annotator, rows in market.annotations.items():
        assert {(r - first) // step for r in rows} == set(tcpd[annotator])
        assert all((r - first) % step == 0 for r in rows)
    # Row ``first`` is TCPD's index 0, which TCPD's F1 adds itself; rows off the grid round.
    rows = [first - 1, first, first + step, first + 2 * step + 1, first + 60 * step]
    expected = [1, 2] if step > 1 else [1, 3]
    assert _on_grid(rows, (first, step, 50)) == expected


def test_memory_per_stream_is_the_stored_state_as_the_daemon_holds_it() -> None:
    from adaptd.daemon.core import state_format
    from adaptd.daemon.core.detectors.river import RiverDetector
    from bench.detect.__main__ import cost

    cusum = cost(CANDIDATES["cusum"], n=500, repeats=1)
    assert cusum["us_per_event"] > 0 and cusum["state_bytes"] > 0
    # river's detector is measured without the benchmark's standardising wrapper (a class
    # stored states may not hold), as the daemon's RiverDetector it is.
    adwin = cost(CANDIDATES["river_adwin"], n=500, repeats=1)
    detector = CANDIDATES["river_adwin"].make()
    values = np.random.default_rng(1).standard_normal(500)
    values[250:] += 1.0  # the values cost() feeds
    for x in values:
        detector.update(float(x))
    assert isinstance(detector.detector, RiverDetector)
    assert adwin["state_bytes"] == len(state_format.dumps(detector.detector))
    assert cost(CANDIDATES["river_kswin"], n=50, repeats=1)["state_bytes"] is None


def test_a_default_chosen_on_the_benchmark_is_not_counted_as_a_default() -> None:
    import json
    from pathlib import Path

    from bench.detect.report import goals, markdown

    report = json.loads((Path(__file__).parents[3] / "docs/bench/detect.json").read_text())
    for result in report["detectors"].values():
        result["default_seen_scores"] = False
    fair = goals(report)["mean_default_f1"]
    best = fair["detector"]
    report["detectors"][best]["default_seen_scores"] = True
    marked = goals(report)["mean_default_f1"]
    assert marked["detector"] != best and marked["f1"] <= fair["f1"]
    assert marked["defaults_chosen_on_these_series"] == {best: fair["f1"]}
    assert f"{best}'s default, {fair['f1']:.3f}, was chosen after seeing" in markdown(report)


def test_configurations_run_in_workers_give_the_same_figures(series: list[Series]) -> None:
    from concurrent.futures import ProcessPoolExecutor

    candidate = CANDIDATES["page_hinkley"]
    alone = evaluate(candidate, series)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = evaluate(candidate, series, pool)
    assert pooled == alone
    assert alone["configs"] == len(candidate.configs()) > 1


def test_a_pool_refuses_what_its_workers_cannot_look_up(series: list[Series]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    stranger = Candidate("page_hinkley", CANDIDATES["page_hinkley"].make, {"input": "level"})
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="CANDIDATES"):
        evaluate(stranger, series, pool)
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="load_series"):
        evaluate(CANDIDATES["page_hinkley"], series[:3], pool)
