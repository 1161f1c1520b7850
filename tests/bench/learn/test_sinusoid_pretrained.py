from __future__ import annotations

import torch

from adaptd.adapters.network import PolicyNet
from adaptd.adapters.tasks import SinusoidTasks, evaluate_adaptation
from bench.learn.sinusoid.pretrained import JointRegression


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
