"""Between the learner's messages (numpy) and torch: weights, labels, and episodes as tasks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.func import functional_call

from adaptd.adapters import PolicyNet, Task
from adaptd.adapters.protocol import Loss
from adaptd.replay.episode import Episode

__all__ = ["episode_task", "numpy_params", "outputs", "targets", "tensor_params"]


def tensor_params(params: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """float32 tensors of numpy weights (copies: message arrays may be read-only)."""
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in params.items()}


def numpy_params(params: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """float32 numpy copies of weights, as they travel in results and messages."""
    return {k: v.detach().cpu().numpy().astype(np.float32, copy=True) for k, v in params.items()}


def outputs(net: PolicyNet, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The network's raw outputs with ``params``."""
    return functional_call(net, dict(params), (x,))


def targets(y: np.ndarray, loss: Loss) -> torch.Tensor:
    """Labels as the loss wants them: they travel as float32, a classifier's are class ids."""
    t = torch.from_numpy(np.ascontiguousarray(y))
    return t.long() if loss == "cross_entropy" else t


def episode_task(episode: Episode, query_size: int, loss: Loss = "mse") -> Task | None:
    """Split an episode in time: earlier rows support, the latest rows query."""
    x, y = episode.arrays()
    n = len(y)
    if n < 2:
        return None
    q = min(query_size, max(1, n // 4))
    # Episode arrays are read-only views of the stored bytes; torch wants its own copy.
    xt, yt = torch.tensor(x), targets(np.array(y), loss)
    return Task(xt[:-q], yt[:-q], xt[-q:], yt[-q:])
