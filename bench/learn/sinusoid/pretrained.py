"""The MAML paper's sinusoid baseline: one network regressing all tasks jointly, fine-tuned by
plain gradient steps at test time (:class:`JointRegression`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from adaptd.adapters.checks import positive_int
from adaptd.adapters.fast_weights import AdaptResult, adapt, task_loss
from adaptd.adapters.meta.adam import Adam
from adaptd.adapters.meta.base import as_task_tensors
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import MetaStats, Task

__all__ = ["JointRegression"]


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
