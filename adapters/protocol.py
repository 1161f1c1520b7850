"""What a meta-learner is: the small interface the daemon (and any other user) programs against.

A meta-learner owns an initialisation ``params`` for the policy network. It improves that
initialisation from batches of past tasks (``meta_update``) and adapts it to a new regime from
a few labelled examples (``adapt``). This module is torch-free at import time.

The calling loop, as the daemon runs it on its torch worker thread::

    learner = Reptile(PolicyNet(in_dim), inner_steps=5, inner_lr=0.05, seed=0)
    learner.load_state_dict(checkpoint)            # optional: resume

    # background meta-training, every meta_interval_s, from replayed episodes
    for _ in range(meta_steps):
        tasks = [Task(sx, sy, qx, qy) for (sx, sy, qx, qy) in replay.sample(meta_batch)]
        stats = learner.meta_update(tasks)         # MetaStats: losses before/after, seconds

    # after a detected shift, with `shots` fresh examples of the new regime
    result = learner.adapt(support_x, support_y, deadline_s=1.0)   # AdaptResult
    if query_loss(result.params) < query_loss(live) - min_improvement:
        publish(params_to_bytes(result.params))    # NumpyPolicy serves it without torch

    checkpoint = learner.state_dict()              # everything needed to continue exactly

Examples
--------
>>> stats = MetaStats(tasks=8, query_loss_before=1.0, query_loss_after=0.5, seconds=0.01)
>>> stats.query_loss_after < stats.query_loss_before
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

    from .fast_weights import AdaptResult

__all__ = ["MetaLearner", "MetaStats", "Task"]


class Task(NamedTuple):
    """One task (episode): a support set to adapt on and a query set to judge the adaptation."""

    support_x: Tensor
    """Support features ``(n_support, in_dim)``."""
    support_y: Tensor
    """Support targets ``(n_support,)``."""
    query_x: Tensor
    """Query features ``(n_query, in_dim)``."""
    query_y: Tensor
    """Query targets ``(n_query,)``."""


class MetaStats(NamedTuple):
    """Outcome of one ``meta_update``; losses are means over the batch's tasks."""

    tasks: int
    """Tasks in the batch."""
    query_loss_before: float
    """Query MSE at the initialisation (before this update), without adaptation."""
    query_loss_after: float
    """Query MSE after adapting that initialisation on each task's support set only."""
    seconds: float
    """Wall-clock time of the update."""


@runtime_checkable
class MetaLearner(Protocol):
    """A meta-learned initialisation plus the two operations on it."""

    params: dict[str, Tensor]
    """The meta-learned initialisation (detached). ``meta_update`` rebinds it to new tensors
    and never modifies the old ones, so a dict read earlier stays a valid snapshot."""
    updates: int
    """Meta-updates made so far (restored with the state dict)."""

    def meta_update(self, tasks: Sequence[Task]) -> MetaStats:
        """Improve ``params`` from a batch of tasks."""
        ...

    def adapt(self, x: Tensor, y: Tensor, *, deadline_s: float | None = None) -> AdaptResult:
        """Fast weights for a new task from its support set, starting at ``params``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue meta-training exactly (copies, safe to keep)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError if it does not fit this learner."""
        ...
