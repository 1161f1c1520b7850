"""Reference implementations of MAML meta-training for the speed benchmark.

Each takes the same initial weights (a ``PolicyNet`` parameter dict), a meta-batch as four
stacked tensors ``(support_x (T, K, d), support_y (T, K), query_x (T, Q, d), query_y (T, Q))``
and the same hyperparameters, and offers ``meta_gradient(batch)`` (the mean over tasks of the
query-loss gradient with respect to the initialisation, without stepping) and ``step(batch)``
(one meta-iteration: that gradient and one ``torch.optim.Adam`` step).

- :class:`PerTaskLoop`: what people write first. First-order: per task, a deep copy of the model
  and a ``torch.optim.SGD`` for the inner steps, then the query gradient of the copy added to the
  model's. Second-order MAML cannot go through an optimizer's in-place step, so there each task's
  inner loop is the MAML authors' pattern: fast weights ``w - lr * g`` with
  ``torch.autograd.grad(create_graph=True)``, evaluated with ``functional_call``, and one
  ``backward`` per task.
- :class:`L2LMaml`: learn2learn's ``MAML(model, lr, first_order=...)`` with ``clone()`` and
  ``adapt(loss)`` per task, as in its sinusoid example (learn2learn is a benchmark baseline only;
  see :mod:`bench.learn.learn2learn`).
- :class:`HandBatched`: every task at once with stacked weights ``(T, out, in)`` and
  ``torch.baddbmm``; each inner step is one autograd call on the summed task losses (task ``i``'s
  loss depends on its own slice only, so that gradient is the stack of per-task gradients).

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> net = PolicyNet(1, (8,), activation="relu")
>>> g = torch.Generator().manual_seed(0)
>>> batch = (torch.randn(3, 4, 1, generator=g), torch.randn(3, 4, generator=g),
...          torch.randn(3, 4, 1, generator=g), torch.randn(3, 4, generator=g))
>>> kwargs = dict(inner_steps=2, inner_lr=0.01, meta_lr=1e-3)
>>> loop = PerTaskLoop(net, init_params(net, 0), **kwargs).meta_gradient(batch)
>>> hand = HandBatched(net, init_params(net, 0), **kwargs).meta_gradient(batch)
>>> all(torch.allclose(loop[k], hand[k], atol=1e-6) for k in loop)
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from adaptd.adapters.checks import positive_int
from adaptd.adapters.network import PolicyNet

__all__ = ["Batch", "HandBatched", "L2LMaml", "PerTaskLoop", "adapt_copy"]

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
"""Stacked ``(support_x, support_y, query_x, query_y)`` of a meta-batch."""


class _Reference:
    """A model holding the initialisation, an Adam on it, and the inner-loop settings."""

    def __init__(
        self,
        net: PolicyNet,
        params: Mapping[str, Tensor],
        *,
        inner_steps: int,
        inner_lr: float,
        meta_lr: float,
        first_order: bool = False,
    ) -> None:
        positive_int("inner_steps", inner_steps)
        if not inner_lr > 0:
            raise ValueError(f"inner_lr must be positive, got {inner_lr!r}")
        self.model = copy.deepcopy(net)
        self.model.load_state_dict({k: v.detach().clone() for k, v in params.items()})
        self.inner_steps = inner_steps
        self.inner_lr = float(inner_lr)
        self.first_order = first_order
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=meta_lr)

    def meta_gradient(self, batch: Batch) -> dict[str, Tensor]:
        """Mean query-loss gradient over the batch's tasks, at the current initialisation."""
        self.optimizer.zero_grad()
        self._accumulate(batch)
        return {k: p.grad.detach().clone() for k, p in self.model.named_parameters()}

    def step(self, batch: Batch) -> None:
        """One meta-iteration: accumulate the meta-gradient, one Adam step."""
        self.optimizer.zero_grad()
        self._accumulate(batch)
        self.optimizer.step()

    def _accumulate(self, batch: Batch) -> None:
        raise NotImplementedError


class PerTaskLoop(_Reference):
    """One task after the other, as in a plain PyTorch MAML loop (see the module docstring)."""

    def _accumulate(self, batch: Batch) -> None:
        sx, sy, qx, qy = batch
        n = sx.shape[0]
        for i in range(n):
            if self.first_order:
                task_model = adapt_copy(self.model, sx[i], sy[i], self.inner_steps, self.inner_lr)
                query = torch.mean((task_model(qx[i]) - qy[i]) ** 2) / n
                query.backward()
                for p, q in zip(self.model.parameters(), task_model.parameters(), strict=True):
                    p.grad = q.grad if p.grad is None else p.grad + q.grad
            else:
                fast = dict(self.model.named_parameters())
                for _ in range(self.inner_steps):
                    loss = torch.mean((functional_call(self.model, fast, (sx[i],)) - sy[i]) ** 2)
                    grads = torch.autograd.grad(loss, tuple(fast.values()), create_graph=True)
                    fast = {
                        k: w - self.inner_lr * g
                        for (k, w), g in zip(fast.items(), grads, strict=True)
                    }
                query = torch.mean((functional_call(self.model, fast, (qx[i],)) - qy[i]) ** 2)
                (query / n).backward()


def adapt_copy(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float) -> nn.Module:
    """A deep copy of ``model`` after ``steps`` SGD steps on the MSE of ``(x, y)``."""
    task_model = copy.deepcopy(model)
    optimizer = torch.optim.SGD(task_model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.mean((task_model(x) - y) ** 2).backward()
        optimizer.step()
    optimizer.zero_grad()
    return task_model


class L2LMaml(_Reference):
    """learn2learn's ``MAML`` wrapper; raises ImportError when learn2learn is not installed."""

    def __init__(self, net: PolicyNet, params: Mapping[str, Tensor], **kwargs: Any) -> None:
        import learn2learn as l2l  # benchmark-only baseline, never a dependency

        super().__init__(net, params, **kwargs)
        self.maml = l2l.algorithms.MAML(self.model, lr=self.inner_lr, first_order=self.first_order)

    def _accumulate(self, batch: Batch) -> None:
        sx, sy, qx, qy = batch
        n = sx.shape[0]
        for i in range(n):
            learner = self.maml.clone()
            for _ in range(self.inner_steps):
                learner.adapt(torch.mean((learner(sx[i]) - sy[i]) ** 2))
            (torch.mean((learner(qx[i]) - qy[i]) ** 2) / n).backward()

    def adapt(self, x: Tensor, y: Tensor, steps: int) -> nn.Module:
        """The adapted clone after ``steps`` first-order ``adapt`` calls on ``(x, y)``."""
        learner = self.maml.clone()
        for _ in range(steps):
            learner.adapt(torch.mean((learner(x) - y) ** 2), first_order=True)
        return learner


class HandBatched(_Reference):
    """All tasks at once with stacked weights and ``torch.baddbmm`` (the speed reference)."""

    def __init__(self, net: PolicyNet, params: Mapping[str, Tensor], **kwargs: Any) -> None:
        super().__init__(net, params, **kwargs)
        self._act = torch.relu if net.activation == "relu" else torch.tanh

    def _forward(self, weights: list[Tensor], x: Tensor) -> Tensor:
        h = x
        last = len(weights) // 2 - 1
        for j in range(last + 1):
            w, b = weights[2 * j], weights[2 * j + 1]
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if j < last:
                h = self._act(h)
        return h.squeeze(-1)

    def _accumulate(self, batch: Batch) -> None:
        sx, sy, qx, qy = batch
        n = sx.shape[0]
        meta = list(self.model.parameters())
        if self.first_order:
            fast = [p.detach().expand(n, *p.shape).clone().requires_grad_() for p in meta]
        else:
            fast = [p.expand(n, *p.shape) for p in meta]
        for _ in range(self.inner_steps):
            # Sum over tasks of each task's mean loss: its gradient is the per-task gradients.
            loss = ((self._forward(fast, sx) - sy) ** 2).mean(dim=1).sum()
            grads = torch.autograd.grad(loss, fast, create_graph=not self.first_order)
            fast = [w - self.inner_lr * g for w, g in zip(fast, grads, strict=True)]
        query = ((self._forward(fast, qx) - qy) ** 2).mean(dim=1).sum() / n
        if self.first_order:
            grads = torch.autograd.grad(query, fast)
            for p, g in zip(meta, grads, strict=True):
                p.grad = g.sum(dim=0)
        else:
            query.backward()
