"""The TCPD change-point metrics: they reproduce TCPDBench's published scores of the ``zero``
baseline (no change points) on every series, TCPDBench's own examples, and small cases worked
by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adaptd.adapters.changepoints import covering, f1_score, precision_recall

TCPD = Path(__file__).resolve().parents[2] / "bench" / "detect" / "tcpd"


def _load(name: str) -> Any:
    return json.loads((TCPD / name).read_text())


ANNOTATIONS: dict[str, dict[str, list[int]]] = _load("annotations.json")
ZERO_F1 = {s: scores["zero"] for s, scores in _load("scores/default_f1_scores.json").items()}
ZERO_COVER = {s: scores["zero"] for s, scores in _load("scores/default_cover_scores.json").items()}
# Only 32 of the 42 series are in the copy (see its README), and covering needs their length.
N_OBS = {
    path.parent.name: json.loads(path.read_text())["n_obs"]
    for path in sorted(TCPD.glob("datasets/*/*.json"))
}


def test_the_data_is_all_there() -> None:
    assert len(ANNOTATIONS) == 42
    assert len(N_OBS) == 32
    assert set(N_OBS) <= set(ANNOTATIONS) == set(ZERO_F1) == set(ZERO_COVER)


@pytest.mark.parametrize("series", sorted(ANNOTATIONS))
def test_zero_baseline_f1_is_the_published_one(series: str) -> None:
    assert f1_score(ANNOTATIONS[series], []) == pytest.approx(ZERO_F1[series], abs=1e-12)


@pytest.mark.parametrize("series", sorted(N_OBS))
def test_zero_baseline_cover_is_the_published_one(series: str) -> None:
    score = covering(ANNOTATIONS[series], [], N_OBS[series])
    assert score == pytest.approx(ZERO_COVER[series], abs=1e-12)


def test_tcpdbench_examples() -> None:
    """The examples in the docstrings of TCPDBench's metrics.py."""
    annotations = {"1": [10, 20], "2": [11, 20], "3": [10], "4": [0, 5]}
    assert f1_score(annotations, [10, 20]) == 1.0
    assert f1_score({"1": [], "2": [10], "3": [50]}, [10]) == 0.9090909090909091
    assert f1_score({"1": [], "2": [10], "3": [50]}, []) == 0.8
    assert covering({"1": [10, 20], "2": [10], "3": [0, 5]}, [10, 20], 45) == 0.7962962962962963
    assert covering({"1": [], "2": [10], "3": [40]}, [10], 45) == 0.7954144620811286
    assert covering({"1": [], "2": [10], "3": [40]}, [], 45) == 0.8189300411522634


def test_a_perfect_prediction_scores_one() -> None:
    annotations = {"6": [10, 20], "7": [10, 20]}
    assert precision_recall(annotations, [10, 20]) == (1.0, 1.0)
    assert f1_score(annotations, [10, 20]) == 1.0
    assert covering(annotations, [10, 20], n_obs=30) == 1.0
    # With no annotated change, predicting none is perfect too.
    assert f1_score({"6": []}, []) == covering({"6": []}, [], n_obs=30) == 1.0


def test_a_prediction_counts_within_the_margin_only() -> None:
    annotations = {"6": [50]}
    for prediction in ([45], [55]):
        assert precision_recall(annotations, prediction) == (1.0, 1.0)
    # 56 misses 50: one of the two predictions (0, 56) hits, one of the two true points (0, 50).
    assert precision_recall(annotations, [56]) == (0.5, 0.5)
    assert f1_score(annotations, [56]) == 0.5
    assert f1_score(annotations, [51], margin=0) == 0.5
    assert f1_score(annotations, [56], margin=6) == 1.0


def test_one_prediction_cannot_detect_two_points() -> None:
    # 51 is within reach of 50 and 53 but detects only 50: true points {0, 50, 53}.
    assert precision_recall({"6": [50, 53]}, [51]) == (1.0, 2 / 3)
    assert f1_score({"6": [50, 53]}, [51]) == pytest.approx(0.8, abs=1e-15)
    # Across annotators too: the union {0, 50, 53} has two points detected of the two predictions.
    assert precision_recall({"6": [50], "7": [53]}, [51]) == (1.0, 1.0)


def test_the_closest_prediction_is_taken() -> None:
    # 50 takes 51 (not 54), which leaves 54 for 58: all detected.
    assert precision_recall({"6": [50, 58]}, [51, 54]) == (1.0, 1.0)
    # The matching is TCPDBench's greedy one, not a maximum matching: 50 takes the closer 52,
    # and 46 is out of reach of 55, although 50-46 and 55-52 would have detected both.
    assert precision_recall({"6": [50, 55]}, [46, 52]) == (2 / 3, 2 / 3)


def test_repeated_points_and_zero_count_once() -> None:
    annotations = {"6": [10, 20], "7": [12]}
    for predictions in ([0, 11, 11, 30], np.array([30, 11, 0, 30])):
        assert precision_recall(annotations, predictions) == precision_recall(annotations, [11, 30])
        assert covering(annotations, predictions, 40) == covering(annotations, [11, 30], 40)
    assert f1_score({"6": [10, 10, 0]}, [10]) == 1.0


def test_covering_ignores_points_past_the_end() -> None:
    annotations = {"6": [10], "7": [10, 25]}
    assert covering(annotations, [15, 30, 99], n_obs=30) == covering(annotations, [15], n_obs=30)
    assert covering({"6": [10, 30]}, [10], n_obs=30) == 1.0


def test_covering_worked_by_hand() -> None:
    # Annotated [0, 10) and [10, 20), predicted [0, 15) and [15, 20): the first is covered
    # by [0, 15) (Jaccard 10/15), the second by [15, 20) (5/10, against 5/20 for [0, 15)).
    assert covering({"6": [10]}, [15], n_obs=20) == pytest.approx(
        (10 * 10 / 15 + 10 * 5 / 10) / 20, abs=1e-15
    )
    # Predicting nothing covers the annotator's segments of 12 and 18 by the whole series.
    assert covering({"6": [12]}, [], n_obs=30) == pytest.approx(
        (12 * 12 / 30 + 18 * 18 / 30) / 30, abs=1e-15
    )


def test_precision_and_recall_with_two_annotators_worked_by_hand() -> None:
    annotations = {"6": [10, 20], "7": [12]}
    # With 0 added: annotator 6 has {0, 10, 20}, annotator 7 {0, 12}, their union
    # {0, 10, 12, 20}; the predictions are {0, 11, 40}. On the union, 0 detects 0 and 11
    # detects 10, which leaves nothing for 12 and 20: precision 2/3. Annotator 6 has 0 and 10
    # detected (2/3), annotator 7 has 0 and 12 (1): recall (2/3 + 1) / 2 = 5/6.
    precision, recall = precision_recall(annotations, [11, 40])
    assert precision == pytest.approx(2 / 3, abs=1e-15)
    assert recall == pytest.approx(5 / 6, abs=1e-15)
    assert f1_score(annotations, [11, 40]) == pytest.approx(20 / 27, abs=1e-15)
    # Without 40, both predictions detect: precision 1, F1 = 2 * (5/6) / (1 + 5/6) = 10/11.
    assert precision_recall(annotations, [11]) == (1.0, pytest.approx(5 / 6, abs=1e-15))
    assert f1_score(annotations, [11]) == pytest.approx(10 / 11, abs=1e-15)
    # Predicting nothing: only 0 is predicted and it detects 0 in every set, so precision is
    # 1 and recall (1/3 + 1/2) / 2 = 5/12, the "zero" baseline's F1 2 * (5/12) / (17/12).
    assert precision_recall(annotations, []) == (1.0, pytest.approx(5 / 12, abs=1e-15))
    assert f1_score(annotations, []) == pytest.approx(10 / 17, abs=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: f1_score({}, [1]), "at least one annotator"),
        (lambda: covering({}, [1], 10), "at least one annotator"),
        (lambda: f1_score({"6": [3]}, [-1]), "non-negative indices"),
        (lambda: covering({"6": [-2, 5]}, [], 10), "non-negative indices"),
        (lambda: f1_score({"6": [3]}, [2.5]), "integer indices"),
        (lambda: covering({"6": [[3]]}, [], 10), "integer indices"),
        (lambda: covering({"6": [3]}, [], 0), "n_obs must be a positive integer"),
        (lambda: f1_score({"6": [3]}, [3], margin=-1), "margin must be a non-negative"),
    ],
)
def test_bad_arguments_are_refused(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
