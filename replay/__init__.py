"""Replay: episodes of labelled examples, the Redis reservoir that keeps a uniform sample of
them for meta-training (indexed by stream and by (stream, regime), sampled by injected
samplers), and the store of held-out episodes per regime that measures retention (see
docs/replay.md).

Names are resolved lazily (PEP 562 ``__getattr__``) from one table, :data:`_EXPORTS`:
importing the package, or its pure modules such as ``adaptd.replay.episode`` (the episode
format the daemon's pure core uses), imports no Redis client; a Redis-backed name imports
redis on first use. Type checkers see the names in the modules named by the table.

>>> import adaptd.replay as replay
>>> replay.Episode.__module__, replay.ReservoirBuffer.__module__
('adaptd.replay.episode', 'adaptd.replay.reservoir')
>>> replay.sampler_for("uniform")
UniformSampler()
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "AddResult": "layout",
    "Episode": "episode",
    "HeldRegime": "holdout",
    "HoldoutKeys": "holdout",
    "HoldoutStore": "holdout",
    "RegimeSampler": "samplers",
    "ReservoirBuffer": "reservoir",
    "ReservoirKeys": "layout",
    "ReservoirStats": "layout",
    "SAMPLERS": "samplers",
    "Sampler": "samplers",
    "StratifiedSampler": "samplers",
    "StreamSampler": "samplers",
    "UniformSampler": "samplers",
    "decode_episode": "episode",
    "encode_episode": "episode",
    "regime_key": "strata",
    "sampler_for": "samplers",
    "share_out": "strata",
    "split_regime_key": "strata",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
