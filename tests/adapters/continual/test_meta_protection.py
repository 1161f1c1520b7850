"""Continual strategies on a meta-learned initialisation: online EWC, consolidated on one task
family, keeps a meta-learner's initialisation good for that family while it meta-trains on a
conflicting one (the daemon's use of the strategies: the learner is built with the penalty's
regularizer, which does nothing until the penalty is first consolidated)."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual import AnchoredRegularizer, ContinualModel, OnlineEWC
from adaptd.adapters.meta import ANIL, MAML, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task


def family(sign: float, count: int, seed: int) -> list[Task]:
    """Linear tasks ``y = sign * a * x0 + b`` with a in [1, 2]: the two signs conflict."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(count):
        a = 1.0 + torch.rand((), generator=g)
        b = 0.2 * torch.randn((), generator=g)
        x = torch.randn(20, 2, generator=g)
        y = sign * a * x[:, 0] + b
        tasks.append(Task(x[:5], y[:5], x[5:], y[5:]))
    return tasks


def few_shot_loss(learner, tasks: list[Task]) -> float:
    losses = []
    for t in tasks:
        params = learner.adapt(t.support_x, t.support_y, steps=1).params
        with torch.no_grad():
            pred = ContinualModel(learner.net, params, loss="mse").output(params, t.query_x)
            losses.append(float(((pred - t.query_y) ** 2).mean()))
    return sum(losses) / len(losses)


def train(learner, tasks: list[Task], rounds: int) -> None:
    for i in range(rounds):
        learner.meta_update(tasks[(4 * i) % len(tasks) :][:4] or tasks[:4])


@pytest.mark.parametrize("cls", [MAML, ANIL, Reptile])
def test_online_ewc_keeps_the_initialisation_good_for_the_first_family(cls) -> None:
    a_train, a_test = family(+1.0, 40, seed=0), family(+1.0, 20, seed=1)
    b_train = family(-1.0, 40, seed=2)
    results = {}
    for protected in (False, True):
        net = PolicyNet(2, (16,))
        meta_lr = 0.3 if cls is Reptile else 0.01
        ewc = OnlineEWC(lam=50.0)
        regularizer = AnchoredRegularizer(ewc) if protected else None
        learner = cls(
            net, inner_steps=1, inner_lr=0.1, meta_lr=meta_lr, seed=0, regularizer=regularizer
        )
        train(learner, a_train, 150)
        learned = few_shot_loss(learner, a_test)
        if protected:
            model = ContinualModel(net, learner.params, loss="mse")
            xs = torch.cat([torch.cat((t.support_x, t.query_x)) for t in a_train])
            ys = torch.cat([torch.cat((t.support_y, t.query_y)) for t in a_train])
            ewc.consolidate(model, xs, ys)  # the learner is protected from here on
        train(learner, b_train, 150)
        results[protected] = (learned, few_shot_loss(learner, a_test))
    (learned, naive), (_, protected) = results[False], results[True]
    # Unprotected meta-training on the conflicting family ruins the first family; online EWC
    # keeps most of it.
    assert naive > 2 * learned
    assert protected < 0.6 * naive
