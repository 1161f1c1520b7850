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
- :class:`JointRegression` is not a MAML implementation but the MAML paper's sinusoid baseline
  for the ``sinusoid`` section: one network regressing all tasks jointly (Adam), fine-tuned by
  plain gradient steps at test time.
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
from adaptd.adapters.fast_weights import AdaptResult, adapt, task_loss
from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.meta.base import as_task_tensors
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import MetaStats, Task

__all__ = ["Batch", "HandBatched", "JointRegression", "L2LMaml", "PerTaskLoop", "adapt_copy"]

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


class JointRegression:
    """The "pretrained on all tasks, then fine-tuned" baseline (Finn et al., 2017, section 5.1).

    ``meta_update`` takes one Adam step on the mean squared error of the *unadapted* network
    over every point (support and query) of every task in the batch: one network regressing
    all tasks jointly. ``adapt`` fine-tunes with ``inner_steps`` plain gradient steps of size
    ``inner_lr`` (both plain attributes, so an evaluation may change them). It has the
    attributes and methods of a ``MetaLearner`` that the evaluation and ``meta_train`` use.

    Parameters
    ----------
    net
        The architecture (never modified); regression (MSE) only.
    inner_steps, inner_lr
        Fine-tuning steps and step size of ``adapt``.
    meta_lr
        Adam step size of the joint regression.
    seed
        Seed of the initial ``params``.

    Examples
    --------
    >>> x = torch.linspace(-1, 1, 8).unsqueeze(-1)
    >>> tasks = [Task(x, a * x[:, 0], x, a * x[:, 0]) for a in (1.0, 3.0)]
    >>> joint = JointRegression(PolicyNet(1, (8,)), inner_steps=1, inner_lr=0.01, meta_lr=0.05)
    >>> first = joint.meta_update(tasks).query_loss_before
    >>> for _ in range(50):
    ...     stats = joint.meta_update(tasks)
    >>> stats.query_loss_before < first, joint.updates
    (True, 51)
    """

    algorithm = "pretrained"
    second_order = False

    def __init__(
        self, net: PolicyNet, *, inner_steps: int, inner_lr: float, meta_lr: float, seed: int = 0
    ) -> None:
        positive_int("inner_steps", inner_steps)
        for name, value in (("inner_lr", inner_lr), ("meta_lr", meta_lr)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.net = net
        self.inner_steps = inner_steps
        self.inner_lr = float(inner_lr)
        self.meta_lr = float(meta_lr)
        self.seed = seed
        self.loss = "mse"
        self.params = init_params(net, seed)
        self.optimizer = Adam(lr=self.meta_lr)
        self.updates = 0

    def meta_update(self, tasks: list[Task]) -> MetaStats:
        """One Adam step on the joint MSE of all points of ``tasks``; ``query_loss_before`` and
        ``query_loss_after`` are the unadapted query loss before the step (no adaptation)."""
        parts = as_task_tensors(tasks, in_dim=self.net.in_dim)
        x = torch.cat([torch.cat((sx, qx)) for sx, _, qx, _ in parts])
        y = torch.cat([torch.cat((sy, qy)) for _, sy, _, qy in parts])
        with torch.no_grad():
            before = float(
                torch.stack(
                    [task_loss(self.net, self.params, qx, qy) for *_, qx, qy in parts]
                ).mean()
            )
        leaves = {k: v.detach().requires_grad_() for k, v in self.params.items()}
        with torch.enable_grad():
            grads = torch.autograd.grad(task_loss(self.net, leaves, x, y), list(leaves.values()))
        self.params = self.optimizer.step(self.params, dict(zip(leaves, grads, strict=True)))
        self.updates += 1
        return MetaStats(len(parts), before, before, 0.0)

    def adapt(
        self,
        x: Tensor,
        y: Tensor,
        *,
        deadline_s: float | None = None,
        steps: int | None = None,
        start: Mapping[str, Tensor] | None = None,
    ) -> AdaptResult:
        """Fine-tuned weights: ``steps`` (default ``inner_steps``) gradient steps of size
        ``inner_lr`` on ``(x, y)`` from ``start`` (default ``params``)."""
        return adapt(
            self.net,
            self.params if start is None else start,
            x,
            y,
            steps=self.inner_steps if steps is None else steps,
            lr=self.inner_lr,
            deadline_s=deadline_s,
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"algorithm", "updates", "params", "adam"}``, copies."""
        return {
            "algorithm": self.algorithm,
            "updates": self.updates,
            "params": {k: v.clone() for k, v in self.params.items()},
            "adam": copy.deepcopy(self.optimizer.state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output."""
        if state.get("algorithm") != self.algorithm:
            raise ValueError(f"state is for {state.get('algorithm')!r}, not {self.algorithm!r}")
        self.params = {k: v.detach().clone() for k, v in state["params"].items()}
        self.optimizer.load_state_dict(copy.deepcopy(state["adam"]))
        self.updates = int(state["updates"])
