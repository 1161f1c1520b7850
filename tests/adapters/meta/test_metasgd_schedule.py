"""Meta-SGD's learned step-size schedule (``per_step=True``) and step-size schedules in
``adapt``: the chain rule ties it to shared step sizes, extra steps reuse the last step's
sizes, and its state only loads into a learner with the same schedule; its other options are
the base constructor's, passed on."""

from __future__ import annotations

import inspect

import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, adapt
from adaptd.adapters.meta import MetaSGD
from adaptd.adapters.meta.base import FastWeightLearner, LearnerOptions
from adaptd.adapters.meta.metasgd import STEP_SIZE_PREFIX
from adaptd.adapters.network import PolicyNet


def _trained(make_task, *, backend: str = "autograd", updates: int = 3) -> MetaSGD:
    g = torch.Generator().manual_seed(0)
    learner = MetaSGD(
        PolicyNet(4, (8,)), inner_steps=2, meta_lr=0.01, backend=backend, seed=1, per_step=True
    )
    for _ in range(updates):
        learner.meta_update([make_task(g) for _ in range(3)])
    return learner


def test_default_shares_one_set_of_step_sizes() -> None:
    learner = MetaSGD(PolicyNet(4, (8,)), inner_steps=3)
    assert learner.per_step is False
    assert isinstance(learner.alpha, dict)
    assert set(learner.meta_parameters()) == {
        *learner.params,
        *(STEP_SIZE_PREFIX + k for k in learner.params),
    }


def test_per_step_has_one_set_of_step_sizes_per_inner_step() -> None:
    learner = MetaSGD(PolicyNet(4, (8,)), inner_steps=3, inner_lr=0.02, per_step=True)
    assert len(learner.alpha) == 3
    assert all(torch.all(a == 0.02) for step in learner.alpha for a in step.values())
    names = set(learner.meta_parameters()) - set(learner.params)
    assert names == {f"{STEP_SIZE_PREFIX}{i}.{k}" for i in range(3) for k in learner.params}
    assert "per_step=True" in repr(learner)
    with pytest.raises(ValueError, match="per_step"):
        MetaSGD(PolicyNet(4, (8,)), per_step=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_step_gradients_sum_to_the_shared_step_size_gradient(backend: str, make_task) -> None:
    """With equal starting sizes both learners compute the same inner loop; by the chain rule
    the gradient for a shared size is the sum of the gradients for each step's size."""
    g = torch.Generator().manual_seed(2)
    tasks = [make_task(g) for _ in range(3)]
    net = PolicyNet(4, (8,))
    options = {"inner_steps": 3, "inner_lr": 0.1, "backend": backend, "seed": 4}
    shared, _ = MetaSGD(net, **options).meta_gradient(tasks)
    per_step, _ = MetaSGD(net, per_step=True, **options).meta_gradient(tasks)
    for name in MetaSGD(net).params:
        torch.testing.assert_close(per_step[name], shared[name])
        total = sum(per_step[f"{STEP_SIZE_PREFIX}{i}.{name}"] for i in range(3))
        torch.testing.assert_close(total, shared[STEP_SIZE_PREFIX + name])
        # Each step's size has its own gradient, not a third of the shared one.
        assert not torch.allclose(
            per_step[f"{STEP_SIZE_PREFIX}0.{name}"], per_step[f"{STEP_SIZE_PREFIX}2.{name}"]
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_adapt_takes_each_step_with_its_own_sizes_and_reuses_the_last(
    backend: str, make_task
) -> None:
    learner = _trained(make_task, backend=backend)
    first, last = learner.alpha
    assert not torch.equal(first["layers.0.weight"], last["layers.0.weight"])
    task = make_task(torch.Generator().manual_seed(3))
    x, y = task.support_x, task.support_y

    def by_hand(sizes: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        current = learner.params
        for alpha in sizes:
            current = adapt(learner.net, current, x, y, steps=1, lr=alpha).params
        return current

    for steps, sizes in [(1, [first]), (2, [first, last]), (5, [first, last, last, last, last])]:
        result = learner.adapt(x, y, steps=steps)
        assert result.steps == steps
        for name, value in by_hand(sizes).items():
            torch.testing.assert_close(result.params[name], value, msg=f"{steps} steps: {name}")


def test_a_schedule_in_adapt_is_checked_per_step() -> None:
    net = PolicyNet(4, (8,))
    learner = MetaSGD(net, inner_steps=2, per_step=True)
    x, y = torch.ones(3, 4), torch.zeros(3)
    with pytest.raises(ValueError, match="empty schedule"):
        adapt(net, learner.params, x, y, steps=1, lr=[])
    partial = {k: v for k, v in learner.alpha[1].items() if k != "layers.2.bias"}
    with pytest.raises(ValueError, match=r"lr\[1\] has no step size for \['layers.2.bias'\]"):
        adapt(net, learner.params, x, y, steps=1, lr=[learner.alpha[0], partial])
    with pytest.raises(ValueError, match=r"lr\[0\] must be a positive finite number"):
        adapt(net, learner.params, x, y, steps=1, lr=[-0.1])
    # A list of numbers is a schedule too: 0.1, then 0.0001 for every later step.
    scheduled = adapt(net, learner.params, x, y, steps=3, lr=[0.1, 1e-4])
    by_hand = adapt(net, learner.params, x, y, steps=1, lr=0.1).params
    by_hand = adapt(net, by_hand, x, y, steps=2, lr=1e-4).params
    for name, value in by_hand.items():
        torch.testing.assert_close(scheduled.params[name], value)


def test_state_only_loads_into_the_same_schedule(make_task) -> None:
    learner = _trained(make_task, updates=1)
    state = learner.state_dict()
    restored = MetaSGD(PolicyNet(4, (8,)), inner_steps=2, per_step=True, seed=7)
    restored.load_state_dict(state)
    for mine, theirs in zip(restored.alpha, learner.alpha, strict=True):
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    with pytest.raises(ValueError, match="alpha"):
        MetaSGD(PolicyNet(4, (8,)), inner_steps=2).load_state_dict(state)
    with pytest.raises(ValueError, match="alpha' as 3 step sizes"):
        MetaSGD(PolicyNet(4, (8,)), inner_steps=3, per_step=True).load_state_dict(state)
    shared = MetaSGD(PolicyNet(4, (8,)), inner_steps=2).state_dict()
    with pytest.raises(ValueError, match="alpha"):
        MetaSGD(PolicyNet(4, (8,)), inner_steps=2, per_step=True).load_state_dict(shared)
    state["alpha"] = (state["alpha"][0], {**state["alpha"][1], "layers.0.bias": torch.ones(3)})
    with pytest.raises(ValueError, match=r"alpha\[1\] layers.0.bias has shape \(3,\)"):
        MetaSGD(PolicyNet(4, (8,)), inner_steps=2, per_step=True).load_state_dict(state)


def test_options_are_the_base_constructors_and_reach_it() -> None:
    parameters = inspect.signature(FastWeightLearner.__init__).parameters
    assert set(LearnerOptions.__annotations__) == set(parameters) - {"self", "net"}
    learner = MetaSGD(PolicyNet(4, (8,)), inner_steps=2, inner_lr=0.02, seed=3, per_step=True)
    assert (learner.inner_steps, learner.inner_lr, learner.seed) == (2, 0.02, 3)
    assert learner.meta_lr == MetaSGD.default_meta_lr and learner.backend == "autograd"
    with pytest.raises(TypeError, match="inner_stpes"):
        MetaSGD(PolicyNet(4, (8,)), inner_stpes=2)  # type: ignore[call-arg]
