"""What a policy network and its learning algorithm are, without torch.

The service describes the network in every policy message and checkpoint, and builds
numpy servers from its weights; none of that needs torch, which lives only where the
learning runs (the learner process, or the worker thread).

>>> from adaptd.daemon.config.settings import AdaptationSettings
>>> architecture(AdaptationSettings(), in_dim=8)["hidden"]
[32, 32]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from ..config.settings import AdaptationSettings

if TYPE_CHECKING:
    from adaptd.replay.episode import Episode

    from ..core.effects import AdaptationRequest

ACTIVATION = "tanh"
OUTPUT_SCALE = 0.1
"""A fresh policy predicts close to zero, the no-skill forecast of a scaled return."""


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


class MetaRound(NamedTuple):
    """What one meta-update returns, with the new initialisation as numpy arrays."""

    tasks: int
    query_loss_before: float
    query_loss_after: float
    seconds: float
    meta_updates: int
    init: dict[str, np.ndarray]


def architecture(settings: AdaptationSettings, in_dim: int) -> dict[str, Any]:
    return {
        "kind": "mlp",
        "in_dim": in_dim,
        "hidden": list(settings.hidden),
        "activation": ACTIVATION,
        "output_scale": OUTPUT_SCALE,
        "output": "scaled forward return",
    }


def algorithm(settings: AdaptationSettings, meta_updates: int) -> dict[str, Any]:
    return {
        "adaptation": "fast-weight SGD from the meta-learned initialisation",
        "inner_steps": settings.inner_steps,
        "inner_lr": settings.inner_lr,
        "backend": settings.backend,
        "meta_algorithm": settings.meta_algorithm,
        "meta_updates": meta_updates,
    }


class Described:
    """``architecture`` and ``algorithm`` from ``settings``, ``in_dim`` and ``meta_updates``
    (shared by the learner and its process proxy)."""

    settings: AdaptationSettings
    in_dim: int

    @property
    def meta_updates(self) -> int:
        raise NotImplementedError

    @property
    def architecture(self) -> dict[str, Any]:
        return architecture(self.settings, self.in_dim)

    @property
    def algorithm(self) -> dict[str, Any]:
        return algorithm(self.settings, self.meta_updates)


class Learner(Protocol):
    """What the service needs of a learner: ``PolicyLearner`` in this process, or
    ``LearnerProcess`` in a child. Every method is called from the worker thread."""

    @property
    def architecture(self) -> dict[str, Any]: ...

    @property
    def algorithm(self) -> dict[str, Any]: ...

    @property
    def meta_updates(self) -> int: ...

    def adapt(self, request: AdaptationRequest, deadline_s: float) -> AdaptationOutcome: ...

    def meta_train(self, episodes: list[Episode]) -> MetaRound | None: ...

    def consolidate(self, episodes: list[Episode]) -> int:
        """Fold the episodes' Fisher into the penalty; the consolidations so far."""
        ...

    def evaluate(self, episodes: list[Episode]) -> list[float]:
        """Few-shot query loss of each episode from the current initialisation (NaN: too
        short to split)."""
        ...

    def init_numpy(self) -> dict[str, np.ndarray]: ...

    def state_bytes(self) -> bytes: ...

    def load_bytes(self, data: bytes) -> None: ...
