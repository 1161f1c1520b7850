from __future__ import annotations

import pytest
import torch

from adaptd.adapters.meta import FOMAML, MAML
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Task
from bench.learn.speed.baselines import Batch, HandBatched, L2LMaml, PerTaskLoop, adapt_copy
from bench.learn.speed.protocol import sinusoid_batch

NET = PolicyNet(1, (16, 16), activation="relu")


def _batch(seed: int = 0) -> Batch:
    return sinusoid_batch(torch.Generator().manual_seed(seed), tasks=4, shots=5, queries=6)


def _ours(first_order: bool, steps: int) -> dict[str, torch.Tensor]:
    cls = FOMAML if first_order else MAML
    learner = cls(NET, inner_steps=steps, inner_lr=0.01, meta_lr=1e-3, seed=0)
    grads, _ = learner.meta_gradient([Task(*parts) for parts in zip(*_batch(), strict=True)])
    return grads


def _references(first_order: bool, steps: int) -> dict[str, dict[str, torch.Tensor]]:
    kwargs = {"inner_steps": steps, "inner_lr": 0.01, "meta_lr": 1e-3, "first_order": first_order}
    classes = [PerTaskLoop, HandBatched]
    try:
        import learn2learn  # noqa: F401 - optional benchmark baseline
    except ImportError:
        pass
    else:
        classes.append(L2LMaml)
    return {
        c.__name__: c(NET, init_params(NET, 0), **kwargs).meta_gradient(_batch()) for c in classes
    }


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_every_implementation_computes_our_meta_gradient(first_order: bool, steps: int) -> None:
    ours = _ours(first_order, steps)
    for name, grads in _references(first_order, steps).items():
        assert sorted(grads) == sorted(ours), name
        for key in ours:
            torch.testing.assert_close(grads[key], ours[key], rtol=1e-4, atol=1e-6, msg=name)


def test_second_order_term_is_not_negligible_here() -> None:
    # Otherwise agreement of second-order implementations would not tell them from first-order.
    second, first = _ours(False, 3), _ours(True, 3)
    gap = max(float((second[k] - first[k]).abs().max() / first[k].abs().max()) for k in first)
    assert gap > 1e-3


def test_step_applies_adam_to_the_model() -> None:
    loop = PerTaskLoop(NET, init_params(NET, 0), inner_steps=1, inner_lr=0.01, meta_lr=1e-2)
    before = {k: v.detach().clone() for k, v in loop.model.named_parameters()}
    grads = loop.meta_gradient(_batch())
    loop.step(_batch())
    for key, value in loop.model.named_parameters():
        # Adam's first step is lr * g / (|g| + eps): about lr against the sign of the gradient.
        g = grads[key]
        expected = before[key] - 1e-2 * g / (g.abs() + 1e-8)
        torch.testing.assert_close(value.detach(), expected, rtol=0, atol=1e-5)


def test_adapt_copy_lowers_the_loss_and_leaves_the_model_alone() -> None:
    sx, sy, _, _ = _batch()
    model = PolicyNet(1, (16, 16), activation="relu")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    adapted = adapt_copy(model, sx[0], sy[0], steps=20, lr=0.01)

    def loss(m: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(torch.mean((m(sx[0]) - sy[0]) ** 2))

    assert loss(adapted) < loss(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
