"""GEM: the dual's solution is exact with few or many past tasks, the projected gradient satisfies
every constraint and is the closest such vector (brute force over active sets), the margin
biases it as the authors' code does, the strategy projects only on conflict, bounds its
memory, round-trips its state and keeps an earlier task."""

from __future__ import annotations

import itertools

import numpy as np
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
from scipy.optimize import nnls

from adaptd.adapters.continual.gem import GEM, gem_projection
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.training import TrainConfig, run_sequence


def closest_feasible(g: np.ndarray, big: np.ndarray) -> np.ndarray:
    """Brute force: the optimum projects ``g`` onto the null space of its active constraints,
    so the closest feasible candidate over every subset of constraints is the optimum."""
    best, best_gap = None, np.inf
    for size in range(len(big) + 1):
        for active in itertools.combinations(range(len(big)), size):
            a = big[list(active)]
            z = g - a.T @ np.linalg.lstsq(a @ a.T, a @ g, rcond=None)[0] if size else g
            if np.all(big @ z >= -1e-9) and np.linalg.norm(z - g) < best_gap:
                best, best_gap = z, np.linalg.norm(z - g)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_dual_solution_is_exact_with_few_or_many_past_tasks(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    tasks, dims = (3, 8) if seed % 2 == 0 else (7, 4)  # independent, then more tasks than dims
    memories = torch.randn(tasks, dims, generator=g, dtype=torch.float64)
    grad = -memories.sum(0) + 0.3 * torch.randn(dims, generator=g, dtype=torch.float64)
    z = gem_projection(grad, memories, margin=0.0)
    assert bool((memories @ z >= -1e-9).all())
    expected = closest_feasible(grad.numpy(), memories.numpy())
    np.testing.assert_allclose(z.numpy(), expected, atol=1e-8)
    # and the dual's solution is scipy's NNLS of min ||G' v + g|| over v >= 0
    big, flat = memories.numpy(), grad.numpy()
    v, _ = nnls(big.T, -flat)
    np.testing.assert_allclose(z.numpy(), big.T @ v + flat, atol=1e-8)


@pytest.mark.parametrize("seed", range(8))
def test_projection_is_the_closest_vector_meeting_every_constraint(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    memories = torch.randn(3, 6, generator=g, dtype=torch.float64)
    grad = -memories.sum(0) + 0.3 * torch.randn(6, generator=g, dtype=torch.float64)
    assert bool((memories @ grad < 0).any())
    z = gem_projection(grad, memories, margin=0.0)
    assert bool((memories @ z >= -1e-9).all())
    expected = closest_feasible(grad.numpy(), memories.numpy())
    np.testing.assert_allclose(z.numpy(), expected, atol=1e-8)


def test_margin_biases_the_projection_as_the_authors_code() -> None:
    g = torch.Generator().manual_seed(0)
    memories = torch.randn(3, 6, generator=g, dtype=torch.float64)
    grad = torch.randn(6, generator=g, dtype=torch.float64)
    first = memories[0]
    grad = grad - (grad @ first / (first @ first) + 0.5) * first  # <grad, g_0> < 0
    assert float(memories[0] @ grad) < 0
    z0 = gem_projection(grad, memories, margin=0.0)
    z = gem_projection(grad, memories, margin=0.5)
    assert bool((memories @ z >= -1e-9).all())
    # min 1/2 ||G' v + g||^2 over v >= 0.5: v = u + 0.5 with u from NNLS, z = G' v + g.
    big, flat = memories.numpy(), grad.numpy()
    u, _ = nnls(big.T, -(flat + 0.5 * big.sum(0)))
    np.testing.assert_allclose(z.numpy(), big.T @ (u + 0.5) + flat, atol=1e-8)
    # Every past task's loss now decreases to first order, more than under the exact projection.
    assert bool((memories @ z > 1e-3).all())
    assert float((memories @ z).sum()) > float((memories @ z0).sum()) + 1e-3


def test_no_conflict_leaves_the_gradient_unchanged() -> None:
    memories = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([0.5, 2.0])
    assert gem_projection(g, memories) is g
    with pytest.raises(ValueError, match="margin"):
        gem_projection(g, memories, margin=-1.0)
    with pytest.raises(ValueError, match="memories"):
        gem_projection(g, memories[:, :1])


def memory_gradient(
    model: ContinualModel, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    loss = F.cross_entropy(model.output(leaves, x), y)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return torch.cat([gr.reshape(-1) for gr in grads])


def test_adjusted_gradient_does_not_raise_the_memory_loss() -> None:
    first, second = conflicting_tasks()
    model = classifier()
    gem = GEM(memory_per_task=150, margin=0.0, seed=0)
    run_sequence(model, gem, [first], TrainConfig(epochs=10, lr=0.1, batch_size=16))
    x0, y0 = gem.state_dict()["x"][0], gem.state_dict()["y"][0]
    reference = memory_gradient(model, model.params, x0, y0)
    params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    loss = F.cross_entropy(model.output(params, second.train_x), second.train_y)
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    flat = torch.cat([gr.reshape(-1) for gr in grads.values()])
    assert float(flat @ reference) < 0  # the new task conflicts with the old
    adjusted = gem.adjust_gradients(model, params, grads, second)
    out = torch.cat([adjusted[k].reshape(-1) for k in grads])
    assert float(out @ reference) >= -1e-5 * float(reference.norm() * out.norm())
    assert gem.projections == 1
    # On the remembered task itself there is nothing to protect.
    assert gem.adjust_gradients(model, params, grads, first) is grads


def test_memory_is_bounded_by_max_tasks() -> None:
    model = classifier()
    gem = GEM(memory_per_task=5, max_tasks=2, seed=0)
    g = torch.Generator().manual_seed(0)
    for t in range(4):
        x, y = torch.randn(9, 4, generator=g), torch.randint(0, 2, (9,), generator=g)
        gem.after_task(model, ContinualTask(t, x, y, x, y))
    state = gem.state_dict()
    assert state["tasks"] == [2, 3]
    assert [len(y) for y in state["y"]] == [5, 5]


def test_gem_keeps_the_first_task_better_than_fine_tuning() -> None:
    gem = GEM(memory_per_task=100)
    assert_keeps_the_first_task(gem, learned=0.85)
    assert gem.projections > 0


def test_state_round_trips_and_continues_identically() -> None:
    config = TrainConfig(epochs=3, lr=0.1, batch_size=16)
    gem, twin = GEM(memory_per_task=30, seed=5), GEM(memory_per_task=30)
    model = hand_over(gem, twin, config)
    assert_continues_identically(model, gem, twin, config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"memory_per_task": 0}, "memory_per_task"),
        ({"max_tasks": 0}, "max_tasks"),
        ({"margin": -0.1}, "margin"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GEM(**kwargs)
