"""What every first-order meta-learner here shares: arguments, the initialisation, ``adapt``,
task checks and the state dict. Subclasses implement ``meta_update``.

Examples
--------
>>> import torch
>>> tasks = [Task(torch.zeros(4, 3), torch.zeros(4), torch.zeros(2, 3), torch.zeros(2))]
>>> [tuple(part.shape) for part in as_task_tensors(tasks, in_dim=3)[0]]
[(4, 3), (4,), (2, 3), (2,)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..fast_weights import BACKENDS, AdaptResult, Backend, Params, adapt
from ..network import PolicyNet, init_params
from ..protocol import Task

__all__ = ["FastWeightLearner", "as_task_tensors"]


class FastWeightLearner:
    """Base of Reptile and FOMAML (see those for the parameters)."""

    algorithm = ""
    """Name stored in the state dict, so one learner's state cannot load into another."""

    def __init__(
        self,
        net: PolicyNet,
        *,
        inner_steps: int,
        inner_lr: float,
        meta_lr: float,
        backend: Backend,
        seed: int,
    ) -> None:
        if not isinstance(net, PolicyNet):
            raise ValueError(f"net must be a PolicyNet, got {type(net).__name__}")
        if isinstance(inner_steps, bool) or not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(f"inner_steps must be a positive integer, got {inner_steps!r}")
        _check_rate("inner_lr", inner_lr)
        _check_rate("meta_lr", meta_lr)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.net = net
        self.inner_steps = inner_steps
        self.inner_lr = float(inner_lr)
        self.meta_lr = float(meta_lr)
        self.backend: Backend = backend
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self.params: Params = init_params(self.net, self.seed)
        self.updates = 0

    def adapt(self, x: Tensor, y: Tensor, *, deadline_s: float | None = None) -> AdaptResult:
        """Fast weights for a new task: ``inner_steps`` steps from ``params`` on ``(x, y)``."""
        return adapt(
            self.net,
            self.params,
            x,
            y,
            steps=self.inner_steps,
            lr=self.inner_lr,
            deadline_s=deadline_s,
            backend=self.backend,
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"algorithm", "updates", "params"}`` plus the subclass's own state; all copies."""
        return {
            "algorithm": self.algorithm,
            "updates": self.updates,
            "params": {k: v.clone() for k, v in self.params.items()},
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output of the same algorithm and network shape."""
        if state.get("algorithm") != self.algorithm:
            raise ValueError(
                f"state is for algorithm {state.get('algorithm')!r}, not {self.algorithm!r}"
            )
        params = state.get("params")
        if not isinstance(params, dict) or set(params) != set(self.params):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise ValueError(f"state params {got} do not match the network's {sorted(self.params)}")
        for name, value in params.items():
            if tuple(value.shape) != tuple(self.params[name].shape):
                raise ValueError(
                    f"state param {name} has shape {tuple(value.shape)}, "
                    f"expected {tuple(self.params[name].shape)}"
                )
        self._load_extra_state(state)
        self.params = {k: params[k].detach().clone().to(self.params[k].dtype) for k in self.params}
        self.updates = int(state.get("updates", 0))

    def _columns(
        self, tasks: Sequence[Task]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """Checked tasks as four lists: support x, support y, query x, query y."""
        dtype = next(iter(self.params.values())).dtype
        parts = as_task_tensors(tasks, in_dim=self.net.in_dim, dtype=dtype)
        sx, sy, qx, qy = (list(column) for column in zip(*parts, strict=True))
        return sx, sy, qx, qy

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(inner_steps={self.inner_steps}, inner_lr={self.inner_lr}, "
            f"meta_lr={self.meta_lr}, backend={self.backend!r}, seed={self.seed}, "
            f"updates={self.updates})"
        )


def as_task_tensors(
    tasks: Sequence[Task], *, in_dim: int, dtype: torch.dtype = torch.float32
) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Validated ``(support_x, support_y, query_x, query_y)`` per task, cast to ``dtype``."""
    if len(tasks) == 0:
        raise ValueError("tasks is empty: a meta-update needs at least one task")
    out = []
    for i, task in enumerate(tasks):
        sx, sy, qx, qy = (torch.as_tensor(part, dtype=dtype) for part in task)
        for name, x, y in (("support", sx, sy), ("query", qx, qy)):
            if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != in_dim:
                raise ValueError(
                    f"task {i}: {name}_x must have shape (n >= 1, {in_dim}), got {tuple(x.shape)}"
                )
            if tuple(y.shape) != (x.shape[0],):
                raise ValueError(
                    f"task {i}: {name}_y must have shape ({x.shape[0]},), got {tuple(y.shape)}"
                )
        out.append((sx, sy, qx, qy))
    return out


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
