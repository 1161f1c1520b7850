"""One (stream, task)'s live policy and its adaptation requests in flight.

The live policy is the one last published for the stream and task (its version, weights, and
a numpy copy that scores examples prequentially). At most one adaptation request is in flight;
a newer one waits in ``queued`` (replacing an older waiting one) and is handed over when the
pending one completes, with the policy live by then as its parent, because its gate must
compare against that.

>>> from types import SimpleNamespace
>>> slot = PolicySlot()
>>> first, second, third = (SimpleNamespace(id=str(i)) for i in range(3))
>>> slot.submit(first), slot.submit(second), slot.submit(third)   # one in flight
(True, False, False)
>>> slot.queued is third
True
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptd.adapters.serving import NumpyPolicy

if TYPE_CHECKING:
    from .effects import AdaptationRequest

__all__ = ["PolicySlot"]


class PolicySlot:
    """The live policy of one (stream, task) and the requests that will replace it."""

    __slots__ = ("model", "pending", "queued", "version", "weights")

    def __init__(self) -> None:
        self.version = 0
        self.weights: dict[str, np.ndarray] | None = None
        self.model: NumpyPolicy | None = None
        """Derived from ``weights``: never pickled, rebuilt by :meth:`rebuild`."""
        self.pending: AdaptationRequest | None = None
        self.queued: AdaptationRequest | None = None

    def adopt(
        self, version: int, weights: dict[str, np.ndarray], activation: str, skip: int = 0
    ) -> None:
        """Make a published policy the live one (``skip`` as the task head's)."""
        self.version = version
        self.weights = weights
        self.model = NumpyPolicy.from_params(weights, activation=activation, skip=skip)

    def rebuild(self, activation: str, skip: int = 0) -> None:
        """Rebuild the numpy model from the weights (after a restore)."""
        self.model = (
            None
            if self.weights is None
            else NumpyPolicy.from_params(self.weights, activation=activation, skip=skip)
        )

    def submit(self, request: AdaptationRequest) -> bool:
        """Take a new request; True when it is in flight now (the caller sends it), False when
        it waits for the pending one."""
        if self.pending is None:
            self.pending = request
            return True
        self.queued = request
        return False

    def complete(self, request_id: str) -> AdaptationRequest | None:
        """Mark the in-flight request done; returns the queued one to submit next, if any."""
        if self.pending is None or self.pending.id != request_id:
            return None
        queued, self.queued = self.queued, None
        if queued is not None:
            # Its gate must compare against whatever policy is live now.
            queued = replace(queued, parent_version=self.version, parent_weights=self.weights)
        self.pending = queued
        return queued

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k != "model"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.model = None
