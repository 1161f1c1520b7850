"""Episodes: windows of labelled examples from one stream and one regime, as replay items.

The daemon cuts a stream's labelled examples into episodes of ``episode_size`` examples
(an episode also ends at a regime shift) and offers each completed one to the reservoir.
An episode carries its arrays as raw little-endian float32 bytes, so encoding is one
msgpack array with two binary blobs and decoding makes no copies of the numbers.

>>> import numpy as np
>>> ep = Episode.from_arrays(
...     stream="BTC-USD", segment=1, topic="adaptd.market", partition=2,
...     offsets=[10, 11, 13], ts_ms=[1000, 1001, 1003],
...     x=np.arange(6.0).reshape(3, 2), y=[0.5, -0.25, 0.0])
>>> ep.id
'adaptd.market:2:BTC-USD:10-13'
>>> x, y = ep.arrays()
>>> x.shape, y.tolist()
((3, 2), [0.5, -0.25, 0.0])
>>> decode_episode(encode_episode(ep)) == ep
True
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Episode", "decode_episode", "encode_episode"]

_FLOAT32_LE = np.dtype("<f4")


class Episode(msgspec.Struct, frozen=True, array_like=True):
    """A window of ``n`` labelled examples (``d`` features each) from one stream and regime.

    Build one with :meth:`from_arrays`, which validates the arrays; the constructor and
    :func:`decode_episode` check only that the fields are consistent with each other.

    Parameters
    ----------
    stream
        The stream id (the Kafka key of the source events).
    segment
        How many shifts the stream had seen before this episode.
    topic, partition
        Where the source events came from.
    first_offset, last_offset
        Kafka offsets of the source events of the first and last example.
    first_ts_ms, last_ts_ms
        Event timestamps of the first and last example.
    x, y
        float32 little-endian bytes: ``x`` row-major with shape ``(n, d)``, ``y`` shape ``(n,)``.
    n, d
        Examples and features.
    feature_names
        Optional names of the ``d`` features.
    regime
        The regime id the stream's prototypical regime classifier gave these examples
        (see ``adaptd.daemon.core.regimes``); recurring regimes share an id, segments do not.
    """

    stream: str
    segment: int
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    first_ts_ms: int
    last_ts_ms: int
    x: bytes
    y: bytes
    n: int
    d: int
    feature_names: tuple[str, ...] = ()
    regime: int = 0
    """Last, with a default, so episodes stored before regime ids existed still decode."""

    def __post_init__(self) -> None:
        # Runs on construction and on decoding, so a corrupt blob never becomes an Episode.
        if not self.stream:
            raise ValueError("stream must be a non-empty string")
        if not self.topic:
            raise ValueError("topic must be a non-empty string")
        if self.segment < 0:
            raise ValueError(f"segment must be >= 0, got {self.segment}")
        if self.regime < 0:
            raise ValueError(f"regime must be >= 0, got {self.regime}")
        if self.partition < 0:
            raise ValueError(f"partition must be >= 0, got {self.partition}")
        if not 0 <= self.first_offset <= self.last_offset:
            raise ValueError(
                f"offsets must satisfy 0 <= first_offset <= last_offset, "
                f"got {self.first_offset} and {self.last_offset}"
            )
        if self.n < 1 or self.d < 1:
            raise ValueError(f"n and d must be >= 1, got n={self.n}, d={self.d}")
        if len(self.x) != 4 * self.n * self.d:
            raise ValueError(f"x holds {len(self.x)} bytes, expected 4*n*d = {4 * self.n * self.d}")
        if len(self.y) != 4 * self.n:
            raise ValueError(f"y holds {len(self.y)} bytes, expected 4*n = {4 * self.n}")
        if self.feature_names and len(self.feature_names) != self.d:
            raise ValueError(
                f"feature_names has {len(self.feature_names)} names for d={self.d} features"
            )

    @property
    def source(self) -> str:
        """``topic:partition:stream``, the scope within which offsets only grow."""
        return f"{self.topic}:{self.partition}:{self.stream}"

    @property
    def id(self) -> str:
        """``source:first_offset-last_offset``; redelivery reproduces it exactly."""
        return f"{self.source}:{self.first_offset}-{self.last_offset}"

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` as float32 arrays of shapes ``(n, d)`` and ``(n,)``.

        They are read-only views of the episode's bytes; copy them before writing.
        """
        x = np.frombuffer(self.x, dtype=_FLOAT32_LE).reshape(self.n, self.d)
        y = np.frombuffer(self.y, dtype=_FLOAT32_LE)
        return x, y

    @classmethod
    def from_arrays(
        cls,
        *,
        stream: str,
        segment: int,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        ts_ms: Sequence[int],
        x: ArrayLike,
        y: ArrayLike,
        feature_names: Sequence[str] = (),
        regime: int = 0,
    ) -> Episode:
        """An episode from per-example source offsets and timestamps and the arrays.

        ``offsets[i]`` and ``ts_ms[i]`` belong to example ``i``; offsets must not decrease,
        every value must be finite once converted to float32. Raises ValueError naming
        the first problem found.
        """
        xa = np.asarray(x)
        ya = np.asarray(y)
        if xa.ndim != 2:
            raise ValueError(f"x must be 2-D with shape (n, d), got shape {xa.shape}")
        n, d = xa.shape
        if n < 1 or d < 1:
            raise ValueError(f"x must hold at least one example and one feature, got {xa.shape}")
        if ya.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match x {xa.shape}, got {ya.shape}")
        if len(offsets) != n:
            raise ValueError(f"offsets has {len(offsets)} entries for n={n} examples")
        if len(ts_ms) != n:
            raise ValueError(f"ts_ms has {len(ts_ms)} entries for n={n} examples")
        x32 = _finite_float32("x", xa)
        y32 = _finite_float32("y", ya)
        offs = [int(o) for o in offsets]
        for i in range(1, n):
            if offs[i] < offs[i - 1]:
                raise ValueError(
                    f"offsets must be non-decreasing: offsets[{i}]={offs[i]} "
                    f"< offsets[{i - 1}]={offs[i - 1]}"
                )
        return cls(
            stream=stream,
            segment=int(segment),
            topic=topic,
            partition=int(partition),
            first_offset=offs[0],
            last_offset=offs[-1],
            first_ts_ms=int(ts_ms[0]),
            last_ts_ms=int(ts_ms[-1]),
            x=x32.tobytes(),
            y=y32.tobytes(),
            n=n,
            d=d,
            feature_names=tuple(feature_names),
            regime=int(regime),
        )


def _finite_float32(name: str, values: np.ndarray) -> np.ndarray:
    try:
        # Values beyond float32's range become inf here and are reported just below.
        with np.errstate(over="ignore"):
            as32 = np.ascontiguousarray(values, dtype=_FLOAT32_LE)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    bad = ~np.isfinite(as32)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite in float32; {name}{list(where)} = {values[where]!r}"
        )
    return as32


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Episode)


def encode_episode(ep: Episode) -> bytes:
    """The episode as msgpack: one array of its fields, the arrays as binary blobs."""
    return _ENCODER.encode(ep)


def decode_episode(data: bytes) -> Episode:
    """The inverse of :func:`encode_episode`.

    Raises ValueError (``msgspec.DecodeError``) if ``data`` is not a consistent episode.
    """
    return _DECODER.decode(data)
