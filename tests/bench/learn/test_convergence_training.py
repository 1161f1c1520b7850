from __future__ import annotations

import numpy as np
import pytest

from adaptd.adapters.meta import MAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks, evaluate_adaptation, query_loss
from bench.learn.convergence import training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_batched_errors_equal_task_by_task_adaptation(steps: int) -> None:
    net = PolicyNet(1, (16, 16), activation="relu")
    learner = MAML(net, inner_steps=1, inner_lr=0.05, meta_lr=1e-3, seed=1)
    tasks = SinusoidTasks(seed=2).sample(7, k_support=5, k_query=9)
    errors = training.adapted_errors(learner, tasks, steps)
    learner.inner_steps = steps if steps > 0 else 1
    one_by_one = [
        query_loss(
            learner,
            learner.params if steps == 0 else learner.adapt(t.support_x, t.support_y).params,
            t.query_x,
            t.query_y,
        )
        for t in tasks
    ]
    np.testing.assert_allclose(errors, one_by_one, rtol=1e-5)
    assert evaluate_adaptation(learner, tasks, steps).mean == pytest.approx(errors.mean(), 1e-5)
