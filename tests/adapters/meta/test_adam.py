from __future__ import annotations

import pytest
import torch

from adaptd.adapters.meta.adam import Adam


def test_matches_torch_optim_adam_step_by_step() -> None:
    g = torch.Generator().manual_seed(0)
    start = {"a": torch.randn(3, 2, generator=g), "b": torch.randn(4, generator=g)}
    grads = [{k: torch.randn(v.shape, generator=g) for k, v in start.items()} for _ in range(6)]
    leaves = [v.clone().requires_grad_() for v in start.values()]
    reference = torch.optim.Adam(leaves, lr=0.01)
    ours, params = Adam(lr=0.01), dict(start)
    for step in grads:
        for leaf, grad in zip(leaves, step.values(), strict=True):
            leaf.grad = grad.clone()
        reference.step()
        params = ours.step(params, step)
        for leaf, value in zip(leaves, params.values(), strict=True):
            torch.testing.assert_close(value, leaf.detach(), atol=1e-7, rtol=1e-6)
    assert ours.t == 6


def test_step_does_not_modify_its_inputs() -> None:
    params = {"w": torch.ones(2)}
    grads = {"w": torch.ones(2)}
    out = Adam(lr=0.1).step(params, grads)
    assert torch.equal(params["w"], torch.ones(2))
    assert torch.equal(grads["w"], torch.ones(2))
    assert not torch.equal(out["w"], params["w"])


def test_state_round_trip_continues_identically() -> None:
    params = {"w": torch.tensor([1.0, -2.0])}
    grads = [{"w": torch.tensor([0.3 * i, -0.1])} for i in range(1, 5)]
    first = Adam(lr=0.05)
    for g in grads[:2]:
        params = first.step(params, g)
    saved = first.state_dict()
    second = Adam(lr=0.05)
    second.load_state_dict(saved)
    a, b = params, params
    for g in grads[2:]:
        a, b = first.step(a, g), second.step(b, g)
    assert torch.equal(a["w"], b["w"])
    assert saved["t"] == 2  # a copy: later steps did not change it


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": 1.0, "betas": (0.9, 1.0)}, "betas"),
        ({"lr": 1.0, "eps": 0}, "eps"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Adam(**kwargs)


def test_bad_state_is_refused() -> None:
    with pytest.raises(ValueError, match="Adam state"):
        Adam(lr=0.1).load_state_dict({"exp_avg": {}})
