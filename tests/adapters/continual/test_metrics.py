"""The accuracy matrix's metrics on hand-made matrices: average accuracy, backward and forward
transfer, forgetting (Chaudhry's maximum and Avalanche's diagonal), retention and its summary,
entries that were not evaluated, and losses (lower is better)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptd.adapters.continual.metrics import AccuracyMatrix


def matrix(
    rows: list[list[float]], baseline: list[float], *, higher: bool = True
) -> AccuracyMatrix:
    m = AccuracyMatrix(len(rows), higher_is_better=higher)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            m.record(i, j, value)
    for j, value in enumerate(baseline):
        m.record_baseline(j, value)
    return m


NAN = math.nan
ACCURACIES = [
    [0.90, 0.20, NAN],
    [0.95, 0.80, 0.30],
    [0.60, 0.50, 0.95],
]
"""Task 0 improves after task 1 (0.95 > 0.90), so forgetting's maximum and the diagonal differ."""


def test_metrics_of_an_accuracy_matrix() -> None:
    m = matrix(ACCURACIES, [0.25, 0.25, 0.20])
    assert m.average_accuracy() == pytest.approx((0.60 + 0.50 + 0.95) / 3)
    assert m.average_accuracy(1) == pytest.approx((0.95 + 0.80) / 2)
    assert m.average_accuracy(0) == pytest.approx(0.90)
    assert m.backward_transfer() == pytest.approx(((0.60 - 0.90) + (0.50 - 0.80)) / 2)
    assert m.forward_transfer() == pytest.approx(((0.20 - 0.25) + (0.30 - 0.20)) / 2)
    assert m.forgetting() == pytest.approx(((0.95 - 0.60) + (0.80 - 0.50)) / 2)
    assert m.avalanche_forgetting() == pytest.approx(-m.backward_transfer())
    assert m.retention() == pytest.approx([0.60 / 0.90, 0.50 / 0.80, 1.0])


def test_entries_not_evaluated_are_skipped() -> None:
    rows = [row[:] for row in ACCURACIES]
    rows[1][0] = NAN  # row 1 evaluated only on its own task (eval_every)
    m = matrix(rows, [0.25, 0.25, NAN])
    assert m.forgetting() == pytest.approx(((0.90 - 0.60) + (0.80 - 0.50)) / 2)
    assert m.forward_transfer() == pytest.approx(0.20 - 0.25)  # b[2] unknown: only j = 1
    rows[2][1] = NAN
    m = matrix(rows, [0.25, 0.25, 0.20])
    assert m.backward_transfer() == pytest.approx(0.60 - 0.90)
    assert m.average_accuracy() == pytest.approx((0.60 + 0.95) / 2)
    assert math.isnan(m.retention()[1])
    summary = m.retention_summary(earliest=0.5)
    assert summary["earliest"] == {"tasks": 2, "mean": round(0.6 / 0.9, 4), "worst": 0.6667}
    assert summary["all"]["tasks"] == 3
    assert summary["all"]["worst"] == round(0.6 / 0.9, 4)


def test_losses_are_oriented_so_that_positive_transfer_is_good() -> None:
    losses = [
        [0.1, 2.0, 2.0],
        [0.5, 0.2, 1.5],
        [0.8, 0.4, 0.1],
    ]
    m = matrix(losses, [2.0, 2.0, 2.0], higher=False)
    assert m.average_accuracy() == pytest.approx((0.8 + 0.4 + 0.1) / 3)  # the mean loss
    assert m.backward_transfer() == pytest.approx(((0.1 - 0.8) + (0.2 - 0.4)) / 2)
    assert m.forward_transfer() == pytest.approx(((2.0 - 2.0) + (2.0 - 1.5)) / 2)
    assert m.forgetting() == pytest.approx(((0.8 - 0.1) + (0.4 - 0.2)) / 2)
    assert m.retention() == pytest.approx([0.1 / 0.8, 0.2 / 0.4, 1.0])


def test_retention_summary_over_the_earliest_tasks() -> None:
    n = 20
    m = AccuracyMatrix(n)
    for j in range(n):
        m.record(j, j, 0.8)
        m.record(n - 1, j, 0.8)
    m.record(n - 1, 0, 0.4)
    m.record(n - 1, 1, 0.6)
    m.record(n - 1, 5, 0.2)
    summary = m.retention_summary(0.1)
    assert summary["earliest"] == {"tasks": 2, "mean": 0.625, "worst": 0.5}
    assert summary["all"]["tasks"] == n
    assert summary["all"]["worst"] == 0.25
    assert summary["all"]["mean"] == round((0.5 + 0.75 + 0.25 + 17) / n, 4)
    assert m.retention_summary(0.01)["earliest"]["tasks"] == 1


def test_a_single_task_and_the_summary() -> None:
    m = matrix([[0.7]], [0.1])
    assert m.average_accuracy() == pytest.approx(0.7)
    assert math.isnan(m.backward_transfer())
    assert math.isnan(m.forward_transfer())
    assert math.isnan(m.forgetting())
    assert m.retention() == [1.0]
    full = matrix(ACCURACIES, [0.25, 0.25, 0.20]).summary()
    assert full["tasks"] == 3
    assert full["backward_transfer"] == -0.3
    assert full["forgetting"] == 0.325
    assert set(full) == {
        "tasks",
        "average_accuracy",
        "backward_transfer",
        "forward_transfer",
        "forgetting",
        "retention",
    }


def test_unrecorded_entries_are_nan_and_bad_sizes_are_refused() -> None:
    m = AccuracyMatrix(2)
    assert np.isnan(m.values).all() and np.isnan(m.baseline).all()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_tasks"):
            AccuracyMatrix(bad)  # type: ignore[arg-type]
