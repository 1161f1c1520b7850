from __future__ import annotations

import pytest
import torch

from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import EpisodeSampler, rotated_digits
from bench.learn import classifiers
from bench.learn.digits import PROTOCOL, QUICK

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_nearest_neighbour_is_the_closest_support_example_not_the_class_mean() -> None:
    # Class 0 has one support point next to the query and one far away: its mean is farther
    # from the query than class 1's only point, but its nearest member is closer.
    support_x = torch.tensor([[0.0], [10.0], [2.0]])
    support_y = torch.tensor([0, 0, 1])
    query_x, query_y = torch.tensor([[0.5], [2.1]]), torch.tensor([0, 1])
    task = Task(support_x, support_y, query_x, query_y)
    assert classifiers.nearest_neighbour_accuracies([task]) == [1.0]
    mean = classifiers.test(classifiers.make_learner("nearest_mean", 1, PROTOCOL, 0), [task])
    assert mean["accuracy"] == 0.5  # the first query is nearer class 1's mean (2 < 5 - 0.5)


def test_training_keeps_the_best_validation_state() -> None:
    x, y = rotated_digits()
    config = {**PROTOCOL, **QUICK, "max_updates": 6, "eval_every": 2}
    sampler = EpisodeSampler(x, y, range(20), n_way=5, k_shot=1, n_query=3, seed=0)
    val = EpisodeSampler(x, y, range(20, 30), n_way=5, k_shot=1, n_query=3, seed=1).sample(8)
    learner, record = classifiers.train("protonet", sampler, val, config, seed=0)
    assert record["val_accuracy"] == pytest.approx(learner.evaluate(val).accuracy)


def test_unknown_model_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="model"):
        classifiers.make_learner("svm", 64, PROTOCOL, 0)
