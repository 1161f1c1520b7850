"""Between the learner's numpy messages and torch: weights, labels, episodes as tasks."""

from __future__ import annotations

import numpy as np
import torch
from test_policy_learner import IN_DIM, episode

from adaptd.daemon.learner.tensors import episode_task, numpy_params, targets, tensor_params


def test_episode_task_splits_in_time() -> None:
    ep = episode(3, n=40)
    x, y = ep.arrays()
    task = episode_task(ep, query_size=8)
    assert task is not None
    torch.testing.assert_close(task.support_x, torch.from_numpy(x[:32].copy()))
    torch.testing.assert_close(task.support_y, torch.from_numpy(y[:32].copy()))
    torch.testing.assert_close(task.query_x, torch.from_numpy(x[32:].copy()))
    torch.testing.assert_close(task.query_y, torch.from_numpy(y[32:].copy()))


def test_episode_task_keeps_most_of_a_short_episode_for_support() -> None:
    task = episode_task(episode(0, n=12), query_size=8)
    assert (len(task.support_y), len(task.query_y)) == (9, 3)  # a quarter held out


def test_episode_task_copes_with_two_and_one_examples() -> None:
    ep = episode(1, n=2)
    x, y = ep.arrays()
    task = episode_task(ep, query_size=8)
    assert task is not None
    assert (task.support_x.shape, task.query_x.shape) == ((1, IN_DIM), (1, IN_DIM))
    assert torch.equal(task.support_x[0], torch.from_numpy(x[0].copy()))
    assert torch.equal(task.query_x[0], torch.from_numpy(x[1].copy()))
    assert float(task.support_y[0]) == float(y[0])
    assert float(task.query_y[0]) == float(y[1])
    assert episode_task(episode(1, n=1), query_size=8) is None


def test_labels_are_class_ids_for_a_classifier_and_floats_otherwise() -> None:
    y = np.array([1.0, 0.0, 1.0], np.float32)
    assert targets(y, "cross_entropy").dtype == torch.int64
    assert targets(y, "mse").dtype == torch.float32
    ep = episode(2, n=12)
    task = episode_task(ep, query_size=4, loss="cross_entropy")
    assert task is not None and task.support_y.dtype == torch.int64


def test_weights_round_trip_as_float32_copies() -> None:
    w = {"a": np.arange(6, dtype=np.float64).reshape(2, 3)}
    w["a"].flags.writeable = False  # as the arrays of a decoded message are
    t = tensor_params(w)
    assert t["a"].dtype == torch.float32
    t["a"] += 1.0  # a copy: the message's array is untouched
    back = numpy_params(t)
    assert back["a"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], w["a"] + 1.0)
