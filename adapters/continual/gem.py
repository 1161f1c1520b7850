"""Gradient episodic memory (GEM; Lopez-Paz & Ranzato, 2017): never step so that the loss of a
past task's memory goes up, to first order.

GEM keeps ``memory_per_task`` examples of each past task. At every step it computes the
gradient ``g_k`` of each past task's memory loss; if the batch gradient ``g`` conflicts with
any of them (``<g, g_k> < 0``), ``g`` is replaced by the closest vector ``z`` with
``<z, g_k> >= 0`` for every ``k``. With ``G`` the matrix of the ``g_k`` (rows), the primal
``min_z 1/2 ||z - g||^2 s.t. G z >= 0`` has the dual (the paper's eq. 11-13)::

    min_v 1/2 v' G G' v + g' G' v   s.t.  v >= 0,        z = G' v + g

a non-negative quadratic program in as many variables as past tasks. It is the non-negative
least-squares problem ``min_v ||G' v + g||^2`` (``v >= 0``), which ``scipy.optimize.nnls``
solves exactly (Lawson & Hanson's active-set method) without forming ``G G'``. As in the
authors' code, ``margin`` ``gamma`` tightens the dual's bounds to
``v >= gamma``, which biases the step towards lowering past losses (``gamma = 0`` gives the
exact projection); ``G z >= 0`` holds either way.

Cost grows with the tasks: one gradient per remembered task per step and ``memory_per_task``
examples each. ``max_tasks`` keeps only the most recent tasks' memories (bounded memory and
time, older tasks then unprotected); None keeps them all.

Examples
--------
>>> import torch
>>> g = torch.tensor([1.0, -1.0])
>>> G = torch.tensor([[0.0, 1.0]])                  # one past task, conflicting: <g, g_0> = -1
>>> gem_projection(g, G, margin=0.0)                # the closest vector with <z, g_0> >= 0
tensor([1., 0.])
>>> gem_projection(torch.tensor([1.0, 1.0]), G)     # no conflict: unchanged
tensor([1., 1.])

References
----------
Lopez-Paz, D. & Ranzato, M. (2017). Gradient episodic memory for continual learning. NeurIPS.
Lawson, C. L. & Hanson, R. J. (1974). Solving least squares problems. Prentice-Hall, ch. 23.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from scipy.optimize import nnls
from torch import Tensor

from ..checks import non_negative, positive_int
from ..fast_weights import Params
from ..losses import detached_leaves
from .protocol import ContinualModel, ContinualTask
from .rehearsal import Classes, SeededRehearsal, replay_losses

__all__ = ["GEM", "flat_gradient", "flatten", "gem_projection", "memory_gradient", "unflatten"]


def gem_projection(g: Tensor, memories: Tensor, margin: float = 0.5) -> Tensor:
    """GEM's replacement of the gradient ``g`` ``(P,)`` given past tasks' gradients
    ``memories`` ``(K, P)``: ``g`` itself when ``memories @ g >= 0``, else ``G' v + g`` with
    ``v`` the solution of the dual with bounds ``v >= margin``."""
    if g.ndim != 1 or memories.ndim != 2 or memories.shape[1] != len(g):
        raise ValueError(f"g must be (P,) and memories (K, P), got {g.shape}, {memories.shape}")
    non_negative("margin", margin)
    if bool((memories @ g >= 0).all()):
        return g
    big = memories.detach().to(torch.float64).numpy()
    flat = g.detach().to(torch.float64).numpy()
    # v = u + margin with u >= 0: min ||G' u + (g + margin G' 1)||^2 over u >= 0.
    shifted = flat + margin * big.sum(0)
    u, _ = nnls(big.T, -shifted)
    z = big.T @ (u + margin) + flat
    return torch.from_numpy(z).to(g.dtype)


def flat_gradient(loss: Tensor, params: Mapping[str, Tensor], names: list[str]) -> Tensor:
    """The gradient of ``loss`` with respect to ``params[name]`` for ``names``, concatenated."""
    grads = torch.autograd.grad(loss, [params[k] for k in names], allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(params[k]) if gr is None else gr).reshape(-1)
            for k, gr in zip(names, grads, strict=True)
        ]
    )


def memory_gradient(
    model: ContinualModel,
    params: Mapping[str, Tensor],
    names: list[str],
    x: Tensor,
    y: Tensor,
    task_ids: Tensor,
    classes: Classes,
) -> Tensor:
    """The gradient of the mean replay loss of remembered examples ``(x, y)`` (each scored over
    its task's classes, :func:`replay_losses`) with respect to ``params[name]`` for ``names``,
    flattened in that order: the reference that GEM and A-GEM project the step's gradient
    against. Computed with gradients on, whatever the caller's mode."""
    leaves = detached_leaves(params, names)
    with torch.enable_grad():
        loss = replay_losses(model, leaves, x, y, task_ids, classes).mean()
        return flat_gradient(loss, leaves, names)


def flatten(grads: Mapping[str, Tensor]) -> Tensor:
    """``grads``' values flattened and concatenated in its order (the inverse of
    :func:`unflatten`)."""
    return torch.cat([g.reshape(-1) for g in grads.values()])


def unflatten(flat: Tensor, like: Mapping[str, Tensor]) -> Params:
    """``flat`` cut into tensors shaped like ``like``'s values, in its order (the inverse of
    concatenating them flattened)."""
    out, offset = {}, 0
    for k, v in like.items():
        out[k] = flat[offset : offset + v.numel()].reshape(v.shape)
        offset += v.numel()
    return out


class GEM(SeededRehearsal):
    """Gradient episodic memory.

    Parameters
    ----------
    memory_per_task
        Examples kept of each task (a seeded uniform draw of its training set).
    max_tasks
        Most recent tasks whose memories are kept; None for all (cost grows with tasks).
    margin
        ``gamma``, the lower bound of the dual variables (0: the exact projection).
    seed
        Seed of the memory draws.
    """

    name: ClassVar[str] = "gem"
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = (
        {},
        {"margin": 0.0, "max_tasks": 1},
    )

    def __init__(
        self,
        memory_per_task: int = 256,
        *,
        max_tasks: int | None = None,
        margin: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.memory_per_task = positive_int("memory_per_task", memory_per_task)
        self.max_tasks = positive_int("max_tasks", max_tasks, optional=True)
        self.margin = non_negative("margin", margin)
        self.seed = seed
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._memories: dict[int, tuple[Tensor, Tensor]] = {}  # oldest first, as the classes
        self.projections = 0
        """Steps whose gradient was projected (a diagnostic, not saved)."""

    def after_task(self, model: ContinualModel, task: ContinualTask) -> None:
        """Remember ``memory_per_task`` examples of the task, forgetting the oldest task's
        beyond ``max_tasks``."""
        n = len(task.train_y)
        index = torch.randperm(n, generator=self._generator)[: self.memory_per_task]
        self._memories.pop(task.id, None)
        self._memories[task.id] = (task.train_x[index], task.train_y[index])
        self._learned(task)
        while self.max_tasks is not None and len(self._memories) > self.max_tasks:
            oldest = next(iter(self._memories))
            del self._memories[oldest], self._classes[oldest]

    def adjust_gradients(
        self,
        model: ContinualModel,
        params: Mapping[str, Tensor],
        grads: Params,
        task: ContinualTask,
    ) -> Params:
        """``grads`` projected so that no remembered task's memory loss increases."""
        past = self._past(task)
        if not past:
            return grads
        names = list(grads)
        rows = []
        for t in past:
            x, y = self._memories[t]
            ids = torch.full((len(y),), t, dtype=torch.int64)
            rows.append(memory_gradient(model, params, names, x, y, ids, self._classes))
        g = flatten(grads)
        memories = torch.stack(rows)
        if bool((memories @ g >= 0).all()):
            return grads
        self.projections += 1
        return unflatten(gem_projection(g, memories, self.margin), grads)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "tasks": list(self._memories),
            "x": [x.clone() for x, _ in self._memories.values()],
            "y": [y.clone() for _, y in self._memories.values()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._memories = {
            int(t): (x.clone(), y.clone())
            for t, x, y in zip(state["tasks"], state["x"], state["y"], strict=True)
        }
