"""Replay: episodes of labelled examples, the Redis reservoir that keeps a uniform sample of
them for meta-training (indexed by stream and by (stream, regime)), and the store of
held-out episodes per regime that measures retention (see docs/replay.md)."""

from .episode import Episode, decode_episode, encode_episode
from .holdout import HeldRegime, HoldoutKeys, HoldoutStore
from .reservoir import AddResult, ReservoirBuffer, ReservoirKeys, ReservoirStats
from .strata import regime_key, share_out, split_regime_key

__all__ = [
    "AddResult",
    "Episode",
    "HeldRegime",
    "HoldoutKeys",
    "HoldoutStore",
    "ReservoirBuffer",
    "ReservoirKeys",
    "ReservoirStats",
    "decode_episode",
    "encode_episode",
    "regime_key",
    "share_out",
    "split_regime_key",
]
