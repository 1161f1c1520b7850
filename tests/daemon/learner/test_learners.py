"""The learner of every policy task behind one object, as the learner process serves it."""

from __future__ import annotations

import numpy as np
import pytest

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.learner.algorithms import LEARNERS, make_learner
from adaptd.daemon.learner.learners import TaskLearners
from adaptd.daemon.learner.messages import AdaptJob, TaskSpec, architecture

SETTINGS = load_settings(
    environ={}, adaptation={"shots": 16, "query_size": 4, "hidden": [8], "seed": 0}
).adaptation
RETURN = TaskSpec("return", in_dim=5, out_dim=1, loss="mse", output_scale=0.1, output="y")
DIRECTION = TaskSpec("direction", 3, 2, "cross_entropy", 0.1, "logits of down, up")


def job(task: str, in_dim: int, classes: bool) -> AdaptJob:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, in_dim)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32) if classes else x[:, 0].astype(np.float32)
    return AdaptJob("j", task, x[:12], y[:12], x[12:], y[12:], None, None, 0.0)


def test_each_task_has_its_own_network_and_jobs_go_to_their_task() -> None:
    learners = TaskLearners(SETTINGS, [RETURN, DIRECTION])
    assert set(learners.learners) == {"return", "direction"}
    ret, direction = learners.init_numpy("return"), learners.init_numpy("direction")
    assert ret["layers.0.weight"].shape == (8, 5) and ret["layers.2.weight"].shape == (1, 8)
    assert direction["layers.0.weight"].shape == (8, 3)
    assert direction["layers.2.weight"].shape == (2, 8)
    outcome = learners.adapt(job("direction", 3, classes=True), 5.0)
    assert outcome.weights["layers.2.weight"].shape == (2, 8)
    assert outcome.query_loss_after >= 0
    assert learners.meta_updates("return") == learners.meta_updates("direction") == 0


def test_an_unknown_task_is_named() -> None:
    learners = TaskLearners(SETTINGS, [RETURN])
    with pytest.raises(KeyError, match="no learner for policy task 'risk'"):
        learners.init_numpy("risk")


def test_each_tasks_checkpoint_loads_into_its_own_learner_only() -> None:
    a, b = TaskLearners(SETTINGS, [RETURN, DIRECTION]), TaskLearners(SETTINGS, [RETURN, DIRECTION])
    b.load_bytes("direction", a.state_bytes("direction"))
    with pytest.raises(ValueError, match=r"shape"):
        b.load_bytes("return", a.state_bytes("direction"))


@pytest.mark.parametrize("algorithm", sorted(LEARNERS))
def test_make_learner_takes_the_outer_step_the_algorithm_means(algorithm: str) -> None:
    from adaptd.adapters import PolicyNet

    settings = SETTINGS.model_copy(update={"meta_algorithm": algorithm})
    learner = make_learner(settings, PolicyNet(5, (8,)))
    assert learner.algorithm == algorithm
    expected = settings.meta_lr if algorithm == "reptile" else settings.adam_lr
    assert learner.meta_lr == expected
    assert (learner.inner_steps, learner.inner_lr) == (settings.inner_steps, settings.inner_lr)
    # Reptile moves toward the iterate the learner serves: its best, not its last.
    assert getattr(learner, "keep_best", False) == (algorithm == "reptile")


def test_the_architecture_names_out_dim_only_when_it_is_not_one() -> None:
    assert "out_dim" not in architecture(SETTINGS, RETURN)  # as checkpoints from before
    assert architecture(SETTINGS, DIRECTION)["out_dim"] == 2
    assert architecture(SETTINGS, DIRECTION)["in_dim"] == 3
