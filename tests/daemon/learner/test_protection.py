"""Online EWC in the learner: the meta-learner's regularizer, consolidation, the proximal
penalised adaptation of a returning regime, Reptile's cap, and the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
import torch

from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.fast_weights import grad_and_loss
from adaptd.adapters.meta import ANIL, FOMAML, MetaSGD, Reptile
from adaptd.adapters.meta.base import FastWeightLearner
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.steps import SGD_STEP
from adaptd.daemon.config.settings import ContinualSettings
from adaptd.daemon.learner.protection import Protection

IN_DIM = 3


def _data(seed: int, n: int = 48, sign: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, IN_DIM, generator=g)
    return x, sign * (x[:, 0] - 0.5 * x[:, 1] + 0.3) + 0.1 * torch.randn(n, generator=g)


def _tasks(seed: int, sign: float = 1.0) -> list[Task]:
    out = []
    for i in range(4):
        x, y = _data(100 * seed + i, n=16, sign=sign)
        out.append(Task(x[:10], y[:10], x[10:], y[10:]))
    return out


class Protected(NamedTuple):
    """A protection and the meta-learner built with its regularizer, as the learner builds
    them; ``consolidate`` and ``adapt`` act on that learner."""

    protection: Protection
    learner: FastWeightLearner

    @property
    def net(self) -> PolicyNet:
        return self.protection.net

    @property
    def ewc(self) -> Any:
        return self.protection.ewc

    @property
    def consolidations(self) -> int:
        return self.protection.consolidations

    def consolidate(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        return self.protection.consolidate(self.learner.params, x, y)

    def adapt(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> Any:
        return self.protection.adapt(self.learner, x, y, **kwargs)

    def state_dict(self) -> Any:
        return self.protection.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.protection.load_state_dict(state)


def _setup(cls: type = ANIL, hidden: tuple[int, ...] = (8,), **settings: Any) -> Protected:
    net = PolicyNet(IN_DIM, hidden)
    protection = Protection(ContinualSettings(**settings), net, seed=0)
    kwargs = {"meta_lr": 0.3 if cls is Reptile else 0.02}
    learner = cls(
        net, inner_steps=3, inner_lr=0.1, seed=2, regularizer=protection.regularizer, **kwargs
    )
    return Protected(protection, learner)


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(sum(((a[k] - b[k]) ** 2).sum() for k in b))


def test_without_a_penalty_everything_is_plain() -> None:
    p = _setup(penalty="none")
    assert p.learner.regularizer is None and p.ewc is None
    x, y = _data(0)
    assert not p.consolidate(x, y)
    assert p.consolidations == 0 and p.state_dict() is None
    start = {k: v + 0.2 for k, v in p.learner.params.items()}
    ours = p.adapt(x[:12], y[:12], start=start)
    plain = p.learner.adapt(x[:12], y[:12], start=start)
    for k in plain.params:
        assert torch.equal(ours.params[k], plain.params[k])


def test_before_the_first_consolidation_the_penalty_is_absent() -> None:
    p = _setup()
    assert p.ewc.penalty_at(p.learner.params) is None
    assert p.learner.regularizer.gradient(p.learner.params) is None
    x, y = _data(1)
    start = {k: v + 0.2 for k, v in p.learner.params.items()}
    ours, plain = p.adapt(x, y, start=start), p.learner.adapt(x, y, start=start)
    for k in plain.params:
        assert torch.equal(ours.params[k], plain.params[k])


def test_the_penalty_is_zero_at_the_anchor_and_its_gradient_is_lambda_f_delta() -> None:
    p = _setup(ewc_lambda=7.0)
    x, y = _data(2)
    assert p.consolidate(x, y) and p.consolidations == 1
    anchor, fisher = p.ewc.anchor, p.ewc.fisher
    assert float(p.ewc.penalty_at(anchor)) == 0.0
    for k, v in anchor.items():
        assert torch.equal(v, p.learner.params[k])
    grads = p.learner.regularizer.gradient({k: v + 0.1 for k, v in anchor.items()})
    for k in anchor:
        torch.testing.assert_close(grads[k], 7.0 * fisher[k] * 0.1, rtol=1e-5, atol=1e-8)


def test_meta_training_with_the_penalty_keeps_the_initialisation_nearer_its_anchor() -> None:
    free, held = _setup(FOMAML, penalty="none"), _setup(FOMAML, ewc_lambda=1000.0)
    for p in (free, held):
        p.learner.meta_update(_tasks(0))
        p.consolidate(*_data(3))
    anchor = held.ewc.anchor
    for step in range(4):
        free.learner.meta_update(_tasks(step + 1, sign=-1.0))
        held.learner.meta_update(_tasks(step + 1, sign=-1.0))
    assert _distance(held.learner.params, anchor) < 0.5 * _distance(free.learner.params, anchor)


def test_one_proximal_step_matches_a_hand_computation() -> None:
    p = _setup(FOMAML, hidden=(), policy_lambda=3.0)
    p.learner.inner_steps = 1
    x, y = _data(4)
    p.consolidate(x, y)
    fisher = p.ewc.fisher
    start = {k: v + 0.3 for k, v in p.learner.params.items()}
    grads, _ = grad_and_loss(p.net, start, x[:12], y[:12])
    result = p.adapt(x[:12], y[:12], start=start)
    for k, a in start.items():
        moved = a - 0.1 * grads[k]
        expected = a + (moved - a) / (1.0 + 0.1 * 3.0 * fisher[k])
        torch.testing.assert_close(result.params[k], expected, rtol=1e-6, atol=1e-7)
    assert result.steps == 1 and len(result.losses) == 2


def test_the_step_is_proximal_at_the_start_only_for_a_start_with_a_fisher() -> None:
    # What a caller (the trust region) wraps: the same step that ``adapt`` takes.
    p, off = _setup(policy_lambda=3.0), _setup(policy_lambda=0.0)
    start = {k: v + 0.3 for k, v in p.learner.params.items()}
    assert p.protection.step(start) is SGD_STEP  # no Fisher before the first consolidation
    x, y = _data(5)
    p.consolidate(x, y)
    off.consolidate(x, y)
    assert p.protection.step(None) is SGD_STEP and off.protection.step(start) is SGD_STEP
    step = p.protection.step(start)
    assert isinstance(step, ProximalStep) and step.lam == 3.0
    assert all(torch.equal(step.anchor[k], start[k]) for k in start)


@pytest.mark.parametrize("cls", [ANIL, FOMAML, MetaSGD])
def test_a_stronger_policy_penalty_keeps_a_returning_policy_nearer_its_start(cls: type) -> None:
    distances = []
    for lam in (0.0, 1.0, 100.0, 1e6):
        p = _setup(cls, policy_lambda=lam)
        p.consolidate(*_data(5))
        start = {k: v + 0.3 for k, v in p.learner.params.items()}
        x, y = _data(6, sign=-1.0)
        result = p.adapt(x[:12], y[:12], start=start)
        assert all(bool(torch.isfinite(v).all()) for v in result.params.values())
        distances.append(_distance(result.params, start))
    assert distances[0] > distances[1] > distances[2] > distances[3]
    assert distances[3] < 1e-3 * distances[0]  # an enormous penalty is stable: it stays put


def test_the_penalised_adaptation_honours_the_deadline() -> None:
    p = _setup(policy_lambda=1.0)
    p.consolidate(*_data(7))
    start = dict(p.learner.params)
    result = p.adapt(*_data(8), start=start, deadline_s=0.0)
    assert result.deadline_hit and result.steps == 0
    assert all(torch.equal(result.params[k], start[k]) for k in start)


def test_reptile_stays_finite_under_a_penalty_that_an_explicit_step_would_overshoot() -> None:
    p = _setup(Reptile, ewc_lambda=1e6)
    step = p.learner.meta_lr * p.learner.inner_lr
    p.consolidate(*_data(9))
    assert float(max(f.max() for f in p.ewc.fisher.values())) * step * 1e6 > 2
    anchor = p.ewc.anchor
    for i in range(5):
        p.learner.meta_update(_tasks(i, sign=-1.0))
        assert all(bool(torch.isfinite(v).all()) for v in p.learner.params.values())
    # Capped at 1 / (step * lambda), the penalty pulls back at most to the anchor: the
    # initialisation stays within one Reptile step of it.
    free = _setup(Reptile, penalty="none")
    free.learner.meta_update(_tasks(4, sign=-1.0))
    assert _distance(p.learner.params, anchor) < 4 * _distance(free.learner.params, anchor)


def test_the_state_round_trips_and_none_starts_afresh() -> None:
    p = _setup(ewc_decay=0.5)
    for seed in (10, 11):
        p.learner.meta_update(_tasks(seed))
        p.consolidate(*_data(seed))
    q = _setup(ewc_decay=0.5)
    q.load_state_dict(p.state_dict())
    assert q.consolidations == 2
    for k in p.ewc.fisher:
        assert torch.equal(q.ewc.fisher[k], p.ewc.fisher[k])
        assert torch.equal(q.ewc.anchor[k], p.ewc.anchor[k])
    q.load_state_dict(None)
    assert q.consolidations == 0 and q.ewc.fisher is None
    assert q.ewc.penalty_at(q.learner.params) is None
    with pytest.raises(ValueError, match="cannot load"):
        q.load_state_dict({"name": "si"})
    off = _setup(penalty="none")
    off.load_state_dict(p.state_dict())  # ignored: no penalty configured
    assert off.consolidations == 0
