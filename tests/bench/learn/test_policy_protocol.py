"""The daemon-policy section's data: the daemon's examples of a real series, and its tasks."""

from __future__ import annotations

import numpy as np

from bench.learn.policy import protocol


def test_series_tasks_are_consecutive_windows_with_the_latest_held_out() -> None:
    x = np.arange(60, dtype=np.float32).reshape(30, 2)
    y = np.arange(30, dtype=np.float32)
    tasks = protocol.series_tasks(x, y, shots=10, query=4, stride=10)
    assert len(tasks) == 3
    first = tasks[0]
    assert first.support_y.tolist() == list(range(6))
    assert first.query_y.tolist() == [6.0, 7.0, 8.0, 9.0]
    assert tasks[2].query_y.tolist()[-1] == 29.0


def test_the_daemon_examples_of_a_real_series() -> None:
    x, y = protocol.series_examples("apple")
    assert x.ndim == 2 and x.shape[0] == y.shape[0] > 1000
    assert np.isfinite(x).all() and np.isfinite(y).all()


def test_the_time_split_keeps_validation_and_test_after_training() -> None:
    train, val, test = protocol.splits(quick=True)
    assert (len(train), len(val), len(test)) == (64, 16, 16)
    assert train[0].support_x.shape[1] == protocol.policy_net().in_dim
