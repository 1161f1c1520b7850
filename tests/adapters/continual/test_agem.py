"""A-GEM: the projection formula, the reference gradient of the memory sample, the bounded
memory, the state round trip, and that it keeps an earlier task better than fine-tuning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from continual_support import (
    assert_continues_identically,
    assert_keeps_the_first_task,
    classifier,
    conflicting_tasks,
    hand_over,
)

from adaptd.adapters.continual.agem import AGEM, agem_projection
from adaptd.adapters.continual.protocol import ContinualTask
from adaptd.adapters.continual.training import TrainConfig, run_sequence


def flat(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads.values()])


def test_projection_formula() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        grad, ref = torch.randn(7, generator=g), torch.randn(7, generator=g)
        z = agem_projection(grad, ref)
        if float(grad @ ref) >= 0:
            assert z is grad
            continue
        expected = grad - (grad @ ref) / (ref @ ref) * ref
        assert torch.allclose(z, expected)
        assert abs(float(z @ ref)) < 1e-5  # onto the boundary of the half-space
        # The closest vector of the half-space: what is removed is parallel to ref.
        removed = grad - z
        assert torch.allclose(removed, (removed @ ref) / (ref @ ref) * ref, atol=1e-6)
    zero = torch.zeros(7)
    assert agem_projection(grad, zero) is grad
    with pytest.raises(ValueError, match="shape"):
        agem_projection(grad, torch.zeros(3))


def test_reference_gradient_is_that_of_the_memory_sample() -> None:
    first, second = conflicting_tasks()
    model = classifier()
    agem = AGEM(capacity=60, sample_size=60, seed=0)  # the sample is the whole memory
    run_sequence(model, agem, [first], TrainConfig(epochs=10, lr=0.1, batch_size=16))
    memory = agem.memory
    assert memory.x is not None and memory.y is not None and len(memory) == 60
    params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    ref_loss = F.cross_entropy(model.output(params, memory.x), memory.y)
    ref_grads = torch.autograd.grad(ref_loss, list(params.values()))
    reference = flat(dict(zip(params, ref_grads, strict=True)))
    loss = F.cross_entropy(model.output(params, second.train_x), second.train_y)
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    g = flat(grads)
    assert float(g @ reference) < 0
    adjusted = flat(agem.adjust_gradients(model, params, grads, second))
    expected = g - (g @ reference) / (reference @ reference) * reference
    assert torch.allclose(adjusted, expected, atol=1e-5)
    assert agem.projections == 1
    aligned = {k: -v for k, v in grads.items()}  # no conflict: left alone
    assert agem.adjust_gradients(model, params, aligned, second) is aligned


def test_memory_is_bounded_with_equal_shares() -> None:
    model, agem = classifier(), AGEM(capacity=30, sample_size=8)
    g = torch.Generator().manual_seed(0)
    for t in range(4):
        x, y = torch.randn(50, 4, generator=g), torch.randint(0, 2, (50,), generator=g)
        agem.after_task(model, ContinualTask(t, x, y, x, y))
    assert len(agem.memory) == 30
    assert agem.memory.task.bincount().tolist() == [8, 8, 7, 7]


def test_agem_keeps_the_first_task_better_than_fine_tuning() -> None:
    agem = AGEM(capacity=100, sample_size=64)
    assert agem.adjust_gradients(classifier(), {}, {}, conflicting_tasks()[0]) == {}  # empty memory
    assert_keeps_the_first_task(agem, learned=0.85)
    assert agem.projections > 0


def test_state_round_trips_and_continues_identically() -> None:
    config = TrainConfig(epochs=3, lr=0.1, batch_size=16)
    agem, twin = AGEM(capacity=40, sample_size=10, seed=3), AGEM(capacity=40, sample_size=10)
    model = hand_over(agem, twin, config)
    assert_continues_identically(model, agem, twin, config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"sample_size": 0}, "sample_size"),
        ({"inserter": "fifo"}, "inserter"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AGEM(**kwargs)
