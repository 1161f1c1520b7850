"""What crosses the learner's process boundary, without torch: the requests and results of its
jobs, what it needs to know of each policy task, and how its network and algorithm are
described in policy messages and checkpoints.

The service imports this module (never torch); the learner process speaks only these types,
its settings sections and the replay format, not the daemon's own types.

>>> from adaptd.daemon.config.settings import AdaptationSettings
>>> spec = TaskSpec("return", in_dim=8, out_dim=1, loss="mse", output_scale=0.1,
...                 output="scaled forward return")
>>> architecture(AdaptationSettings(), spec)["hidden"]
[32, 32]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from adaptd.adapters.protocol import Loss

from ..config.settings import AdaptationSettings

if TYPE_CHECKING:
    from adaptd.replay.episode import Episode

__all__ = [
    "ACTIVATION",
    "CHECKPOINT_MAGIC",
    "AdaptJob",
    "AdaptationOutcome",
    "Learner",
    "MetaRound",
    "TaskSpec",
    "algorithm",
    "architecture",
]

CHECKPOINT_MAGIC = b"\xa5adaptd-checkpoint\x03"
"""Starts a checkpoint in today's format (:mod:`.checkpoint`, format 3); those of earlier
versions are ``torch.save`` pickles (zip archives, starting ``PK``)."""

ACTIVATION = "tanh"
"""The policy network's hidden activation."""


class TaskSpec(NamedTuple):
    """What the learner needs to know of a policy task."""

    name: str
    in_dim: int
    """Features the policy reads."""
    out_dim: int
    """Network outputs: 1 for a regression, one logit a class for a classifier."""
    loss: Loss
    """"mse", "cross_entropy" or "qlike"."""
    output_scale: float
    """Scale of the last layer's initial weights (small: a fresh policy is near no-skill)."""
    output: str
    """What the output is, in words (``architecture["output"]``)."""
    baseline_output: float | None = None
    """The raw output that forecasts like the task's baseline, when that is a constant: an
    adapted policy is published only if it also beats that on the query set."""
    skip: int = 0
    """0, or ``out_dim``: the network adds its last ``skip`` inputs to its outputs."""


class AdaptJob(NamedTuple):
    """One adaptation: fresh labelled examples of a new regime, for one task's policy. The
    ``query_x``/``query_y`` rows are held out to gate publication."""

    request_id: str
    task: str
    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    parent_weights: dict[str, np.ndarray] | None
    """The stream's live policy for the task (None: the meta-learned initialisation serves)."""
    start_weights: dict[str, np.ndarray] | None
    """Where adaptation starts: a returning regime's last policy (None: the initialisation)."""
    ready_wall_time: float
    """time.time() when the last needed example matured (for the queueing time)."""


class AdaptationOutcome(NamedTuple):
    """What one adaptation job returns (pickled back from the learner process)."""

    request_id: str
    publish: bool
    weights: dict[str, np.ndarray]
    query_loss_before: float
    query_loss_after: float
    query_loss_scratch: float
    """The same adaptation from a fixed random initialisation: the fine-tuning baseline."""
    support_loss_before: float
    support_loss_after: float
    steps: int
    deadline_hit: bool
    seconds: float
    meta_updates: int
    queued_s: float
    """From the request's readiness to the start of this job (waiting for the worker)."""
    query_loss_baseline: float = float("nan")
    """The task's baseline on the query set (NaN: its baseline is not a constant output)."""
    update_distance: float = float("nan")
    """How far the adapted weights are from the parent's, relative to the parent's size:
    ``||theta - theta_parent|| / ||theta_parent||`` over all weights as one vector (the
    measure of ``adaptation.trust_region``)."""
    trust_region: float | None = None
    """The ``adaptation.trust_region`` the job ran with (None: unbounded)."""
    trust_region_active: bool = False
    """The trust region held the update back: its start or an inner step was projected onto
    the bound."""
    trust_region_lifted: bool = False
    """The trust region was not applied: the parent does not beat the task's constant
    baseline on the query set (a bound would hold subscribers near a losing policy)."""


class MetaRound(NamedTuple):
    """What one meta-update returns, with the new initialisation as numpy arrays."""

    tasks: int
    query_loss_before: float
    query_loss_after: float
    seconds: float
    meta_updates: int
    init: dict[str, np.ndarray]


def architecture(settings: AdaptationSettings, spec: TaskSpec) -> dict[str, Any]:
    """The network of a task's policies, as messages and checkpoints describe it (``out_dim``
    only when it is not 1, so a checkpoint written before policy tasks still matches)."""
    described: dict[str, Any] = {
        "kind": "mlp",
        "in_dim": spec.in_dim,
        "hidden": list(settings.hidden),
        "activation": ACTIVATION,
        "output_scale": spec.output_scale,
        "output": spec.output,
    }
    if spec.out_dim != 1:
        described["out_dim"] = spec.out_dim
    if spec.skip:  # only when set, as out_dim
        described["skip"] = spec.skip
    return described


def algorithm(settings: AdaptationSettings, meta_updates: int) -> dict[str, Any]:
    """How policies are adapted and the initialisation is meta-trained."""
    return {
        "adaptation": "fast-weight SGD from the meta-learned initialisation",
        "inner_steps": settings.inner_steps,
        "inner_lr": settings.inner_lr,
        "backend": settings.backend,
        "meta_algorithm": settings.meta_algorithm,
        "meta_updates": meta_updates,
        # Only when set, so that an unbounded daemon's messages are as before.
        **({} if settings.trust_region is None else {"trust_region": settings.trust_region}),
    }


class Learner(Protocol):
    """What the service needs of the learner: ``TaskLearners`` in this process, or
    ``LearnerProcess`` in a child. Every method is called from the worker thread; ``task`` is
    a policy task's name."""

    def adapt(self, job: AdaptJob, deadline_s: float) -> AdaptationOutcome: ...

    def meta_train(self, task: str, episodes: Sequence[Episode]) -> MetaRound | None: ...

    def consolidate(self, task: str, episodes: Sequence[Episode]) -> int:
        """Fold the episodes' Fisher into the penalty; the consolidations so far."""
        ...

    def evaluate(self, task: str, episodes: Sequence[Episode]) -> list[float]:
        """Few-shot query loss of each episode from the current initialisation (NaN: too
        short to split)."""
        ...

    def init_numpy(self, task: str) -> dict[str, np.ndarray]: ...

    def meta_updates(self, task: str) -> int: ...

    def state_bytes(self, task: str) -> bytes: ...

    def load_bytes(self, task: str, data: bytes) -> None: ...
