from __future__ import annotations

import json

import pytest
import torch

from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks, evaluate_adaptation
from bench.learn import sinusoid
from bench.learn.baselines import JointRegression


def test_quick_run_covers_every_learner_and_renders() -> None:
    result = sinusoid.run(quick=True, seed=0)
    json.dumps(result)
    runs = result["runs"]
    assert [r["learner"] for r in runs] == list(sinusoid.LEARNERS)
    for r in runs:
        assert sorted(r["mse"], key=int) == ["0", "1", "10"]
        assert r["mse"]["1"]["n"] == sinusoid.QUICK["test_tasks"]
        assert "state" not in r  # tensors stay out of the JSON
    tuned = next(r for r in runs if r["learner"] == "pretrained")["tuned"]
    assert {tuned["1"]["lr"], tuned["10"]["lr"]} <= set(sinusoid.FINE_TUNE_LRS)
    checks = {c["check"]: c for c in result["checks"]}
    assert set(checks) == {
        "maml, K = 5, 1 step(s)",
        "maml, K = 5, 10 step(s)",
        "metasgd below maml, K = 5, 1 step",
    }
    text = sinusoid.summary(result)
    for name in ("maml", "fomaml", "reptile", "metasgd", "anil", "pretrained"):
        assert f"| {name}" in text


def test_make_learner_uses_the_protocol_and_reptile_its_own_settings() -> None:
    classes = {"maml": MAML, "fomaml": FOMAML, "metasgd": MetaSGD, "anil": ANIL}
    for name, cls in classes.items():
        learner = sinusoid.make_learner(name, seed=0)
        assert type(learner) is cls
        assert (learner.inner_steps, learner.inner_lr, learner.meta_lr) == (1, 0.01, 1e-3)
        assert learner.net.hidden == (40, 40) and learner.net.activation == "relu"
    reptile = sinusoid.make_learner("reptile", seed=0)
    assert type(reptile) is Reptile
    assert (reptile.inner_steps, reptile.inner_lr, reptile.meta_lr) == (5, 0.02, 0.1)
    assert type(sinusoid.make_learner("pretrained", seed=0)) is JointRegression
    with pytest.raises(ValueError, match="name"):
        sinusoid.make_learner("protonet", seed=0)


def test_maml_training_lowers_the_validation_error() -> None:
    job = {
        **sinusoid.PROTOCOL,
        "learner": "maml",
        "shots": 10,
        "seed": 0,
        "iterations": 200,
        "eval_every": 100,
        "val_tasks": 30,
        "test_tasks": 30,
        "eval_steps": [1],
    }
    result = sinusoid.train_and_test(job)
    curve = result["val_curve"]["mse"]
    assert curve[-1] < 0.8 * curve[0]
    assert isinstance(result["state"], dict) and result["iterations"] == 200


def test_reference_checks_compare_lower_ci_end_with_the_reference() -> None:
    assert sinusoid.passes({"mean": 0.32, "half_width": 0.02}, 0.31)
    assert not sinusoid.passes({"mean": 0.34, "half_width": 0.02}, 0.31)
    # best of the first half (steps <= 20) is 0.9, best overall 0.5
    assert sinusoid.last_half_gain([0, 10, 20, 30, 40], [4.0, 1.0, 0.9, 0.8, 0.5]) == pytest.approx(
        4 / 9
    )
    assert sinusoid.last_half_gain([0], [1.0]) is None


def test_joint_regression_learns_the_mean_wave_and_fine_tunes_without_mutating() -> None:
    source = SinusoidTasks(seed=0)
    test = SinusoidTasks().evaluation_tasks(50, k_support=10, n_query=50, seed=7)
    joint = JointRegression(
        PolicyNet(1, (40, 40), activation="relu"),
        inner_steps=5,
        inner_lr=0.01,
        meta_lr=1e-2,
        seed=0,
    )
    before = evaluate_adaptation(joint, test, steps=0).mean
    for _ in range(150):
        joint.meta_update(source.sample(25, 10, 10))
    # The mean wave is -(2/π)·E[A]·cos x: fitting it takes the MSE from about E[A²]/2 = 4.25
    # toward 4.25 - 1.32 = 2.93, a fall of 30 %.
    assert evaluate_adaptation(joint, test, steps=0).mean < 0.9 * before
    snapshot = {k: v.clone() for k, v in joint.params.items()}
    fitted = joint.adapt(test[0].support_x, test[0].support_y)
    assert fitted.losses[-1] < fitted.losses[0]
    assert all(torch.equal(snapshot[k], joint.params[k]) for k in snapshot)
    copy = JointRegression(joint.net, inner_steps=1, inner_lr=0.01, meta_lr=1e-2, seed=1)
    copy.load_state_dict(joint.state_dict())
    assert all(torch.equal(copy.params[k], joint.params[k]) for k in snapshot)
    assert copy.updates == joint.updates == 150


def test_diverged_adaptations_are_counted_not_averaged_and_fail_the_check() -> None:
    tasks = SinusoidTasks().evaluation_tasks(6, k_support=5, n_query=10, seed=3)
    joint = JointRegression(PolicyNet(1, (8,)), inner_steps=1, inner_lr=1e6, meta_lr=1e-3)
    figures = sinusoid.test_mse(joint, tasks, steps=10)
    assert figures["diverged"] >= 1 and figures["n"] + figures["diverged"] == 6
    assert not sinusoid.passes({**figures, "mean": 0.0}, 0.31)
    assert sinusoid.test_mse(joint, tasks, steps=0)["diverged"] == 0
