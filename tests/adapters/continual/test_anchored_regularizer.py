"""An anchored penalty as a meta-learner's regularizer: its gradient is the penalty's, its
decoupled step is the explicit step with each importance capped so that it never overshoots
the anchor, it reads the strategy's latest consolidation, and it is nothing before one."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual import (
    AnchoredRegularizer,
    ContinualModel,
    MemoryAwareSynapses,
    OnlineEWC,
    SynapticIntelligence,
)
from adaptd.adapters.continual.importance import quadratic_penalty
from adaptd.adapters.meta import Reptile
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Regularizer, Task


def _consolidated(lam: float = 7.0, seed: int = 0) -> tuple[OnlineEWC, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    net = PolicyNet(3, (6,))
    params = init_params(net, seed=seed)
    x = torch.randn(40, 3, generator=g)
    ewc = OnlineEWC(lam=lam)
    ewc.consolidate(ContinualModel(net, params, loss="mse"), x, x[:, 0] + 0.1)
    return ewc, params


def _moved(params: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.2 * torch.randn(v.shape, generator=g) for k, v in params.items()}


def test_it_is_a_regularizer_and_nothing_before_a_consolidation() -> None:
    regularizer = AnchoredRegularizer(OnlineEWC())
    assert isinstance(regularizer, Regularizer)
    params = init_params(PolicyNet(3, (6,)), seed=0)
    assert regularizer.gradient(params) is None
    assert regularizer.decoupled_step(params, 0.1) is None
    with pytest.raises(ValueError, match="AnchoredPenalty"):
        AnchoredRegularizer(object())  # type: ignore[arg-type]


def test_the_gradient_is_lambda_f_delta() -> None:
    ewc, params = _consolidated(lam=7.0)
    moved = _moved(params, 1)
    grads = AnchoredRegularizer(ewc).gradient(moved)
    for k, f in ewc.fisher.items():
        expected = 7.0 * f * (moved[k] - ewc.anchor[k])
        torch.testing.assert_close(grads[k], expected, rtol=1e-5, atol=1e-8)


def test_the_decoupled_step_is_the_capped_explicit_step_bit_for_bit() -> None:
    ewc, params = _consolidated(lam=50.0)
    moved, size = _moved(params, 2), 0.3 * 0.1
    step = AnchoredRegularizer(ewc).decoupled_step(moved, size)
    # The cap as the daemon wrote it before the regularizer existed, kept as the reference.
    cap = 1.0 / (size * ewc.lam)
    capped = {k: f.clamp(max=cap) for k, f in ewc.fisher.items()}
    leaves = {k: v.detach().requires_grad_() for k, v in moved.items()}
    value = ewc.lam / 2 * quadratic_penalty(leaves, ewc.anchor, capped)
    grads = torch.autograd.grad(value, list(leaves.values()))
    for (k, v), g in zip(leaves.items(), grads, strict=True):
        assert torch.equal(step[k], size * g), k
        # never past the anchor: the step moves at most the whole distance back
        assert bool(((moved[k] - step[k] - ewc.anchor[k]).abs() <= (v - ewc.anchor[k]).abs()).all())
    assert any(bool((f > cap).any()) for f in ewc.fisher.values())  # the cap was exercised


def test_a_zero_strength_has_no_step() -> None:
    ewc, params = _consolidated(lam=0.0)
    assert AnchoredRegularizer(ewc).decoupled_step(_moved(params, 3), 0.1) is None


def test_it_reads_the_latest_consolidation() -> None:
    ewc, params = _consolidated()
    regularizer = AnchoredRegularizer(ewc)
    first = regularizer.gradient(_moved(params, 4))
    model = ContinualModel(PolicyNet(3, (6,)), _moved(params, 5), loss="mse")
    ewc.consolidate(model, *_data(6))
    second = regularizer.gradient(_moved(params, 4))
    assert any(not torch.equal(first[k], second[k]) for k in first)


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(seed))
    return x, x[:, 1]


@pytest.mark.parametrize(
    "strategy", [MemoryAwareSynapses(lam=2.0), SynapticIntelligence(c=2.0)], ids=type
)
def test_any_anchored_penalty_serves(strategy) -> None:
    params = init_params(PolicyNet(3, (6,)), seed=0)
    strategy.fold({k: torch.ones_like(v) for k, v in params.items()}, params, decay=1.0)
    moved = _moved(params, 7)
    grads = AnchoredRegularizer(strategy).gradient(moved)
    for k in params:  # d/dw scale * (w - a)^2 = 2 * scale * (w - a)
        torch.testing.assert_close(grads[k], 4.0 * (moved[k] - params[k]), rtol=1e-5, atol=1e-7)


def test_reptile_stays_finite_where_an_uncapped_step_would_diverge() -> None:
    ewc, params = _consolidated(lam=1e6)
    learner = Reptile(PolicyNet(3, (6,)), inner_lr=0.1, meta_lr=0.3, regularizer=None)
    held = Reptile(
        PolicyNet(3, (6,)), inner_lr=0.1, meta_lr=0.3, regularizer=AnchoredRegularizer(ewc)
    )
    x, y = _data(8)
    tasks = [Task(x[:10], -y[:10], x[10:], -y[10:])]
    for _ in range(5):
        learner.meta_update(tasks)
        held.meta_update(tasks)
    assert all(bool(torch.isfinite(v).all()) for v in held.params.values())
    gap = sum(float((held.params[k] - ewc.anchor[k]).pow(2).sum()) for k in params)
    free = sum(float((learner.params[k] - ewc.anchor[k]).pow(2).sum()) for k in params)
    assert gap < free
