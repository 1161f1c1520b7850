"""The ``regularizer`` of every meta-learner (a constructor argument): an extra loss on the
initialisation that ``meta_update`` applies (Adam on meta-gradient plus its gradient; Reptile
as a decoupled step), that is not part of the state, and that changes nothing when its
gradient is zero."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.meta.registry import learners
from adaptd.adapters.meta.regularizer import FunctionRegularizer
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task

LEARNERS = learners()
CASES = [
    (name, options) for name in sorted(LEARNERS) for options in LEARNERS[name].conformance_options
]
IDS = ["-".join([name, *(f"{k}={v}" for k, v in opts.items())]) for name, opts in CASES]


def _learner(name: str, options: dict[str, Any], **kwargs: Any) -> Any:
    net = PolicyNet(3, (6,))
    return LEARNERS[name](net, inner_steps=2, inner_lr=0.05, seed=1, **options, **kwargs)


def _tasks(seed: int) -> list[Task]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(3):
        x = torch.randn(10, 3, generator=g)
        y = (1.0 - i) * x[:, 0] + 0.5 * i
        out.append(Task(x[:6], y[:6], x[6:], y[6:]))
    return out


def _pull_to(anchor: dict[str, torch.Tensor], strength: float) -> FunctionRegularizer:
    def penalty(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return strength / 2 * sum(((params[k] - anchor[k]) ** 2).sum() for k in anchor)

    return FunctionRegularizer(penalty)


def _distance(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> float:
    return float(sum(((params[k] - anchor[k]) ** 2).sum() for k in anchor))


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_a_quadratic_regularizer_pulls_the_initialisation_toward_its_anchor(
    name: str, options: dict[str, Any]
) -> None:
    anchor = {k: torch.full_like(v, 0.5) for k, v in _learner(name, options).params.items()}
    free = _learner(name, options)
    held = _learner(name, options, regularizer=_pull_to(anchor, strength=50.0))
    for step in range(3):
        free.meta_update(_tasks(step))
        held.meta_update(_tasks(step))
    assert _distance(held.params, anchor) < _distance(free.params, anchor)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_a_regularizer_with_zero_gradient_changes_nothing_bit_for_bit(
    name: str, options: dict[str, Any]
) -> None:
    # Zero at every point and a function of the parameters: its gradient is exactly zero.
    zero = FunctionRegularizer(lambda p: 0.0 * sum(v.sum() for v in p.values()))
    plain, flat = _learner(name, options), _learner(name, options, regularizer=zero)
    for step in range(3):
        a, b = plain.meta_update(_tasks(step)), flat.meta_update(_tasks(step))
        assert (a.query_loss_before, a.query_loss_after) == (
            b.query_loss_before,
            b.query_loss_after,
        )
    sa, sb = plain.state_dict(), flat.state_dict()
    for k in sa["params"]:
        assert torch.equal(sa["params"][k], sb["params"][k])
    if "adam" in sa:
        for moment in ("exp_avg", "exp_avg_sq"):
            for k in sa["adam"][moment]:
                assert torch.equal(sa["adam"][moment][k], sb["adam"][moment][k])


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_a_regularizer_returning_none_or_a_constant_is_no_regularizer(
    name: str, options: dict[str, Any]
) -> None:
    plain = _learner(name, options)
    for penalty in (lambda p: None, lambda p: torch.tensor(3.0)):
        other = _learner(name, options, regularizer=FunctionRegularizer(penalty))
        assert other.regularizer.gradient(other.params) is None
    other.meta_update(_tasks(0))
    plain.meta_update(_tasks(0))
    for k in plain.params:
        assert torch.equal(plain.params[k], other.params[k])


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_the_regularizer_is_not_part_of_the_state(name: str, options: dict[str, Any]) -> None:
    anchor = _learner(name, options).params
    learner = _learner(name, options, regularizer=_pull_to(anchor, 1.0))
    learner.meta_update(_tasks(0))
    state = learner.state_dict()
    assert "regularizer" not in state
    fresh = _learner(name, options)
    fresh.load_state_dict(state)
    assert fresh.regularizer is None
    assert copy.deepcopy(learner).regularizer is learner.regularizer  # the caller's object


def test_reptile_applies_the_regularizer_as_a_decoupled_step() -> None:
    plain = _learner("reptile", {}, meta_lr=0.3)
    anchor = {k: torch.zeros_like(v) for k, v in plain.params.items()}
    held = _learner("reptile", {}, meta_lr=0.3, regularizer=_pull_to(anchor, strength=4.0))
    theta = dict(held.params)
    plain.meta_update(_tasks(0))
    held.meta_update(_tasks(0))
    for k, v in theta.items():
        # The gradient of 2 * |theta - 0|^2 at the starting theta is 4 * theta.
        expected = plain.params[k] - 0.3 * 0.05 * 4.0 * v
        torch.testing.assert_close(held.params[k], expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["fomaml", "maml", "anil", "metasgd"])
def test_gradient_learners_step_adam_on_the_sum_of_both_gradients(name: str) -> None:
    anchor = {k: torch.ones_like(v) for k, v in _learner(name, {}).params.items()}
    learner = _learner(name, {}, regularizer=_pull_to(anchor, strength=2.0))
    meta = learner.meta_parameters()
    grads, _ = learner.meta_gradient(_tasks(0))
    total = {k: g + (2.0 * (meta[k] - anchor[k]) if k in anchor else 0.0) for k, g in grads.items()}
    expected = Adam(lr=learner.meta_lr).step(meta, total)
    learner.meta_update(_tasks(0))
    for k, v in learner.meta_parameters().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-7)


def test_a_regularizer_must_return_a_scalar() -> None:
    vector = FunctionRegularizer(lambda p: p["layers.0.bias"] * 2.0)
    learner = _learner("fomaml", {}, regularizer=vector)
    with pytest.raises(ValueError, match="regularizer must return a scalar"):
        learner.meta_update(_tasks(0))


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_a_regularizer_is_a_constructor_argument_checked_by_name(
    name: str, options: dict[str, Any]
) -> None:
    assert _learner(name, options).regularizer is None
    with pytest.raises(ValueError, match="regularizer must have gradient"):
        _learner(name, options, regularizer=lambda p: None)
