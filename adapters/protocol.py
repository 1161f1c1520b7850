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

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from .types import LOSSES, AdaptResult, Loss

if TYPE_CHECKING:
    from torch import Tensor

    from .steps import InnerStep

__all__ = [
    "LOSSES",
    "EpisodeStats",
    "FewShotClassifier",
    "FittedSupport",
    "Loss",
    "MetaLearner",
    "MetaStats",
    "Regularizer",
    "Task",
]


class Task(NamedTuple):
    """One task (episode): a support set to adapt on and a query set to judge the adaptation."""

    support_x: Tensor
    """Support features ``(n_support, in_dim)``."""
    support_y: Tensor
    """Support targets ``(n_support,)``: floats for regression, class ids ``0..N-1`` for an
    N-way classification episode."""
    query_x: Tensor
    """Query features ``(n_query, in_dim)``."""
    query_y: Tensor
    """Query targets ``(n_query,)``."""


class MetaStats(NamedTuple):
    """Outcome of one ``meta_update``; losses are means over the batch's tasks."""

    tasks: int
    """Tasks in the batch."""
    query_loss_before: float
    """Query loss (MSE or cross-entropy) at the initialisation (before this update), without
    adaptation."""
    query_loss_after: float
    """Query loss after adapting that initialisation on each task's support set only."""
    seconds: float
    """Wall-clock time of the update."""


@runtime_checkable
class Regularizer(Protocol):
    """An extra objective on a meta-learner's initialisation, applied by every ``meta_update``
    (for example online EWC protecting what earlier rounds learned).

    A meta-learner takes one as its ``regularizer`` constructor argument and never owns it:
    it is not part of the learner's state, and the caller may keep changing it (consolidate a
    new Fisher, move the anchor). How a learner applies it::

        # gradient learners (MAML, FOMAML, Meta-SGD, ANIL): one Adam step on both gradients
        extra = regularizer.gradient(params)
        grads = meta_grads if extra is None else {k: g + extra[k] for k, g in meta_grads.items()}

        # Reptile: its interpolation, then a decoupled step computed at the old params
        move = regularizer.decoupled_step(old_params, meta_lr * inner_lr)
        params = interpolated if move is None else {k: v - move[k] for k, v in interpolated.items()}
    """

    def gradient(self, params: Mapping[str, Tensor]) -> dict[str, Tensor] | None:
        """The penalty's gradient at ``params``: one detached tensor per parameter (zeros
        where it does not depend on one); ``None`` when there is no penalty (yet)."""
        ...

    def decoupled_step(self, params: Mapping[str, Tensor], size: float) -> dict[str, Tensor] | None:
        """The move of one decoupled step of size ``size`` on the penalty, computed at
        ``params``, which the learner subtracts from its own update's result (for a plain
        explicit step, ``size`` times the gradient; a penalty that an explicit step of that
        size would overshoot may bound it); ``None`` when there is no penalty (yet)."""
        ...


@runtime_checkable
class MetaLearner(Protocol):
    """A meta-learned initialisation plus the two operations on it."""

    algorithm: ClassVar[str]
    """Short name ("maml", "fomaml", "reptile", "metasgd", "anil"), also stored in the state."""
    second_order: ClassVar[bool]
    """True when the meta-gradient differentiates through the inner loop."""
    outer_step: ClassVar[str]
    """What ``meta_lr`` scales: "adam" or "interpolation" (Reptile's move toward adapted
    weights)."""

    params: dict[str, Tensor]
    """The meta-learned initialisation (detached). ``meta_update`` rebinds it to new tensors
    and never modifies the old ones, so a dict read earlier stays a valid snapshot."""
    updates: int
    """Meta-updates made so far (restored with the state dict)."""
    regularizer: Regularizer | None
    """The extra objective on ``params`` that every ``meta_update`` applies (a constructor
    argument, the caller's object, never saved with the state); ``None`` for none."""

    def meta_update(self, tasks: Sequence[Task]) -> MetaStats:
        """Improve ``params`` from a batch of tasks."""
        ...

    def meta_parameters(self) -> dict[str, Tensor]:
        """Everything the outer loop learns: ``params`` plus any learned inner-loop state
        (Meta-SGD's per-parameter step sizes, under names that do not clash with ``params``)."""
        ...

    def adapt(
        self,
        x: Tensor,
        y: Tensor,
        *,
        deadline_s: float | None = None,
        steps: int | None = None,
        start: Mapping[str, Tensor] | None = None,
        step: InnerStep = ...,
        keep_best: bool = False,
    ) -> AdaptResult:
        """Fast weights for a new task from its support set: ``steps`` inner steps (default
        the learner's own) from ``start`` (default ``params``), stopping at the deadline;
        ``step`` replaces the rule of one step (default plain gradient descent,
        :mod:`adaptd.adapters.steps`); ``keep_best`` returns the iterate with the least
        support loss instead of the last."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue meta-training exactly (copies, safe to keep)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError if it does not fit this learner."""
        ...


class EpisodeStats(NamedTuple):
    """Outcome of one ``FewShotClassifier.meta_update``; means over the batch's episodes."""

    tasks: int
    """Episodes in the batch."""
    loss: float
    """The learner's query training loss before this update (cross-entropy; the MSE to
    one-hot targets for relation networks)."""
    accuracy: float
    """Query accuracy before this update (or of ``evaluate``), in ``[0, 1]``."""
    seconds: float
    """Wall-clock time of the update."""


@runtime_checkable
class FittedSupport(Protocol):
    """A classifier built from one support set; it classifies queries into its classes."""

    n_classes: int
    """Classes of the support set (the N of N-way); scores have this many columns."""

    def scores(self, query_x: Tensor) -> Tensor:
        """``(n_query, n_classes)`` scores, higher meaning more likely: negative squared
        distances for prototypes, log attention weights for matching, relation scores."""
        ...

    def predict(self, query_x: Tensor) -> Tensor:
        """``(n_query,)`` class ids, the arg-max of ``scores``."""
        ...


@runtime_checkable
class FewShotClassifier(Protocol):
    """A metric-based few-shot learner: a learned embedding (and comparison) that turns any
    labelled support set into a classifier without gradient steps.

    The calling loop::

        for tasks in sampler:                      # N-way K-shot episodes, classes 0..N-1
            stats = learner.meta_update(tasks)     # EpisodeStats
        fitted = learner.fit(support_x, support_y) # FittedSupport, a frozen snapshot
        labels = fitted.predict(query_x)
    """

    algorithm: ClassVar[str]
    """Short name ("protonet", "matching", "relation"), also stored in the state."""
    updates: int
    """Meta-updates made so far (restored with the state dict)."""

    def meta_update(self, tasks: Sequence[Task]) -> EpisodeStats:
        """One optimiser step on the query cross-entropy of a batch of episodes."""
        ...

    def evaluate(self, tasks: Sequence[Task]) -> EpisodeStats:
        """The same loss and accuracy as ``meta_update`` on a batch of episodes, learning
        nothing (for validation and test episodes)."""
        ...

    def fit(self, support_x: Tensor, support_y: Tensor) -> FittedSupport:
        """A classifier for the support set's classes; later meta-updates do not change it."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue meta-training exactly (copies, safe to keep)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError if it does not fit this learner."""
        ...
