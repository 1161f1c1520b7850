"""Snapshots of stream state from earlier layouts of the code, read into today's.

Today a stream's state is stored in :mod:`.state_format`. Earlier versions stored pickles of
their :class:`~.stream.StreamState` objects, and the layout changed since the first were
written; all of it is undone here so a daemon restarts from where an older one stopped:

- **pickles**: :func:`loads_pickled` reads them (where the daemon allows it: unpickling runs
  code), and the next save stores the state in today's format;
- **module paths**: the core moved from ``adaptd.daemon.<module>`` to
  ``adaptd.daemon.core.<module>``; :func:`loads_pickled` maps the old paths (:data:`MOVED`);
- **policy tasks**: a stream's labeler, episode, adaptation set, regimes, requests and live
  policy moved into one track per task; :func:`migrate_stream_state` turns the state of a
  stream from before (which was the return task's) into a stream with one ``return`` track.
  Snapshots from before regime ids (``regime`` then counted shifts) are read too.
- **extreme moves**: a shift detector written before them has no :class:`~.extreme.ExtremeMove`;
  it gets one that is off, and :meth:`~.stream.StreamState.attach` then applies the settings.

Pure: pickle and the core's own types.
"""

from __future__ import annotations

import io
import pickle
from collections import deque
from typing import Any

from .collect import AdaptationSet
from .extreme import ExtremeMove
from .live import PolicySlot
from .prequential import Prequential
from .regimes import RegimeTracker
from .tasks.returns import ZeroForecast
from .track import TaskTrack
from .validation import ValidationParams, Validator

__all__ = ["MOVED", "loads_pickled", "migrate_stream_state"]

MOVED = {
    f"adaptd.daemon.{name}": f"adaptd.daemon.core.{name}"
    for name in (
        "detection",
        "effects",
        "features",
        "labels",
        "partition",
        "policy",
        "regimes",
        "schema",
        "stream",
    )
}
"""Old module path -> today's, for classes pickled before the core had its own folder."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED.get(module, module), name)


def loads_pickled(data: bytes) -> Any:
    """``pickle.loads`` that also reads pickles written before the core moved. Unpickling runs
    what the pickle names: the daemon reads only pickles it sealed, unless told otherwise
    (``state.read_pickled_snapshots``)."""
    return _Unpickler(io.BytesIO(data)).load()


_LEGACY = (
    "_collect",
    "_collect_shift",
    "_episode",
    "_regime_rows",
    "labeler",
    "pending",
    "policy",
    "policy_version",
    "policy_weights",
    "preq",
    "queued",
    "regime",
    "regimes",
)
"""Per-stream fields of the layout before policy tasks (all the return task's)."""


def migrate_stream_state(state: dict[str, Any]) -> dict[str, Any]:
    """A stream's pickled state in today's layout (unchanged when it already is)."""
    detector = state.get("detector")
    if detector is not None and not hasattr(detector, "extreme"):
        detector.extreme = ExtremeMove(0.0)
    if "tracks" in state:
        return state
    if "segment" not in state:  # before regime ids: ``regime`` counted the shifts
        state = {**state, "segment": state.get("regime", 0), "regime": 0}
    track = object.__new__(TaskTrack)
    track.stream, track.topic, track.partition = state["stream"], state["topic"], state["partition"]
    track.task = "return"
    track.model_id = state["stream"]
    track.labeler = state["labeler"]
    track.scores = Prequential(ZeroForecast())
    track.scores.sums = list(state.get("preq", [0.0, 0.0, 0.0, 0]))
    track.episode = list(state.get("_episode", []))
    track.recent = deque()  # sized on attach
    track.collector = AdaptationSet()
    track.collector.shift = state.get("_collect_shift")
    track.collector.rows = list(state.get("_collect", []))
    track.regimes = object.__new__(RegimeTracker)
    track.regimes.book = state.get("regimes")  # None before regime ids: made on attach
    track.regimes.regime = state.get("regime", 0)
    track.regimes.rows = list(state.get("_regime_rows", []))
    # A policy live at the upgrade is validated from the next adoption on, not retroactively:
    # the restored stream continues exactly as before.
    track.validator = Validator(ValidationParams())
    track.live = PolicySlot()
    track.live.version = state.get("policy_version", 0)
    track.live.weights = state.get("policy_weights")
    track.live.pending = state.get("pending")
    track.live.queued = state.get("queued")
    matured = [
        (track, *item) if type(item) is tuple else item for item in state.get("_matured", [])
    ]
    kept = {k: v for k, v in state.items() if k not in _LEGACY}
    return {**kept, "tracks": (track,), "_matured": matured, "_fired": state.get("_fired", {})}
