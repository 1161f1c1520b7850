"""Replay: episodes of labelled examples and the Redis reservoir that keeps a uniform sample
of them for meta-training (see docs/replay.md)."""

from .episode import Episode, decode_episode, encode_episode
from .reservoir import AddResult, ReservoirBuffer, ReservoirKeys, ReservoirStats

__all__ = [
    "AddResult",
    "Episode",
    "ReservoirBuffer",
    "ReservoirKeys",
    "ReservoirStats",
    "decode_episode",
    "encode_episode",
]
