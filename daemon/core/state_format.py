"""The stored form of a stream's state: msgpack, with every object named by an allowed type.

A partition snapshot in Redis is read back by the daemon, so whoever can write to Redis
chooses what it reads. A pickle names any callable to run; this format names types only,
from an allowlist, and rebuilds them without pickle (the design skops uses for scikit-learn
models):

- ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists and dicts are msgpack's
  own values;
- tuples, sets, deques, numpy arrays and scalars (numeric dtypes only: never ``object``), and
  instances are msgpack extension values, each holding its items or state;
- an instance is rebuilt as pickle's protocol 2 would (``cls.__new__(cls, *args)``, then
  ``__setstate__`` or the ``__dict__`` and slots), but only for a class that is
  :func:`allowed`: the pure core's own (``adaptd.daemon.core``: no I/O), those of
  :data:`THIRD_PARTY`, and those of a package :func:`allow_package` names (that of a policy
  task from outside adaptd, whose code the daemon runs anyway). A blob that names anything
  else, is malformed, or holds an array whose data does not match its shape is refused
  (:class:`StateFormatError`) and nothing of it is returned.

Objects other than lists and dicts keep their identity within one blob (an example held by
two windows is one object again); lists and dicts are stored by value (msgpack's own), which
the stream state allows: none is shared (``tests/daemon/core/test_state_format.py``).

A blob starts with :data:`MAGIC` and a format version. Pickled states from earlier versions
are read by :mod:`.snapshot`, where the daemon allows it.

>>> from collections import deque
>>> blob = dumps({"window": deque([1.5, (2, "b")], maxlen=4), "seen": {3}})
>>> loads(blob)
{'window': deque([1.5, (2, 'b')], maxlen=4), 'seen': {3}}
>>> try:
...     hostile = msgpack.ExtType(8, msgpack.packb(["os.system", ["ls"], None]))
...     loads(MAGIC + zlib.compress(msgpack.packb(hostile)))
... except StateFormatError as exc:
...     print(exc)
the stored state names 'os.system', not a type it may hold
"""

from __future__ import annotations

import copyreg
import importlib
import sys
import zlib
from array import array
from collections import deque
from typing import Any

import msgpack
import numpy as np

__all__ = [
    "MAGIC",
    "MAX_BYTES",
    "THIRD_PARTY",
    "StateFormatError",
    "allow_package",
    "allowed",
    "dumps",
    "loads",
]

MAGIC = b"\xa5adaptd-state\x01"
"""Starts every blob of this format (version 1). A zlib stream (an older pickled state)
starts with 0x78, a sealed blob with :data:`~.sealing.MAGIC`."""

THIRD_PARTY = frozenset(
    {
        "river.drift.adwin.ADWIN",
        "river.drift.page_hinkley.PageHinkley",
        "river._river_rust.drift.AdaptiveWindowing",
        "river.stats.mean.Mean",
    }
)
"""Classes outside adaptd that a stream's state holds (river's detectors, kept as they are)."""

_CORE = "adaptd.daemon.core."
_PACKAGES: set[str] = set()

# Extension codes. Every value that is not msgpack's own is one of these.
_REF, _TUPLE, _SET, _FROZENSET, _DEQUE, _ARRAY, _SCALAR, _OBJECT, _BIGINT, _FLOATS = range(1, 11)
_NUMERIC = frozenset("biufc")
"""Array kinds stored: booleans and numbers (never objects, strings or records)."""


class StateFormatError(ValueError):
    """A stream state this format cannot store, or a blob it must not read."""


def allow_package(package: str) -> None:
    """Allow the classes of ``package`` and its modules in stored states (a configured policy
    task's from outside adaptd)."""
    _PACKAGES.add(package)


def allowed(name: str) -> bool:
    """Whether the class named ``module.qualname`` may be stored and rebuilt."""
    if name.startswith(_CORE) or name in THIRD_PARTY:
        return True
    module = name.rpartition(".")[0]
    return any(module == p or module.startswith(p + ".") for p in _PACKAGES)


def dumps(state: Any) -> bytes:
    """``state`` as a blob (zlib level 1, as the pickles were)."""
    writer = _Writer()
    try:
        body = writer.pack(state)
    except (TypeError, ValueError, OverflowError) as exc:
        raise StateFormatError(f"cannot store the state: {exc}") from exc
    finally:
        writer.close()
    return MAGIC + zlib.compress(body, 1)


def loads(blob: bytes) -> Any:
    """The state stored by :func:`dumps`; :class:`StateFormatError` when ``blob`` is not one,
    or names anything not allowed."""
    if not blob.startswith(MAGIC):
        raise StateFormatError("not a stored stream state of this format")
    try:
        return _Reader().unpack(_inflate(blob[len(MAGIC) :]))
    except StateFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, zlib.error) as exc:
        raise StateFormatError(f"malformed stored state: {exc!r}"[:300]) from exc
    except RecursionError:
        raise StateFormatError("malformed stored state: nested too deeply") from None


MAX_BYTES = 1 << 28
"""Most a blob inflates to (256 MiB; a stream's state is tens of kilobytes): a small blob that
inflates without end is refused, not followed."""


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    body = inflater.decompress(data, MAX_BYTES)
    if inflater.unconsumed_tail:
        raise StateFormatError(f"the stored state inflates beyond {MAX_BYTES} bytes")
    if not inflater.eof:
        raise StateFormatError("malformed stored state: the compressed data is cut short")
    return body


class _Writer:
    """One blob's encoding: a memo of the objects written, and a packer per nesting depth (a
    value's extension payload is packed while its parent's packer is mid-value)."""

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # what ``__reduce_ex__`` makes stays alive: ids stay unique
        self.packers: list[msgpack.Packer] = []
        self.depth = 0

    def close(self) -> None:
        """Let go of the packers: each holds ``self.default``, a cycle through this writer
        that only a full collection would free, with every object it kept alive (the daemon
        collects rarely: a soak of 10,000 adaptations grew by 16 MB per 1,000)."""
        self.packers.clear()
        self.keep.clear()
        self.memo.clear()

    def pack(self, value: Any) -> bytes:
        if self.depth == len(self.packers):
            # strict_types: a tuple or a subclass of a msgpack type (a NamedTuple, np.float64)
            # goes to ``default``, so it comes back as what it was.
            self.packers.append(
                msgpack.Packer(default=self.default, strict_types=True, use_bin_type=True)
            )
        packer = self.packers[self.depth]
        self.depth += 1
        try:
            return packer.pack(value)
        finally:
            self.depth -= 1

    def default(self, obj: Any) -> msgpack.ExtType:
        index = self.memo.get(id(obj))
        if index is not None:
            return _ext((_REF, index.to_bytes(4, "big")))
        self.memo[id(obj)] = len(self.memo)
        self.keep.append(obj)
        return _ext(self.reduce(obj))

    def reduce(self, obj: Any) -> tuple[int, bytes]:
        """The extension code and payload of a value msgpack does not store itself."""
        kind = type(obj)
        if kind is tuple:
            if _all_floats(obj):  # a feature vector: no per-item packing
                return _FLOATS, _doubles(obj)
            return _TUPLE, self.pack(list(obj))
        if kind is set or kind is frozenset:
            return (_SET if kind is set else _FROZENSET), self.pack(list(obj))
        if kind is deque:
            return _DEQUE, self.pack([obj.maxlen, list(obj)])
        if kind is np.ndarray:
            if obj.dtype.kind not in _NUMERIC or obj.dtype.hasobject:
                raise TypeError(f"an array of dtype {obj.dtype} is not stored")
            raw = np.ascontiguousarray(obj).tobytes()
            return _ARRAY, self.pack([obj.dtype.str, list(obj.shape), raw])
        if isinstance(obj, np.generic) and obj.dtype.kind in _NUMERIC:
            return _SCALAR, self.pack([obj.dtype.str, obj.tobytes()])
        if kind is int:  # beyond 64 bits
            return _BIGINT, str(obj).encode()
        # An instance, as pickle reduces it: its class name, constructor arguments and state.
        name = _name(kind)
        reduced = obj.__reduce_ex__(2)
        self.keep.append(reduced)
        if reduced[0] is not copyreg.__newobj__ or reduced[1][0] is not kind:
            raise TypeError(f"{name} is not rebuilt by its class alone ({reduced[0]!r})")
        if any(item is not None for item in reduced[3:5]):
            raise TypeError(f"{name} holds items as a list or dict subclass")
        state = reduced[2] if len(reduced) > 2 else None
        return _OBJECT, self.pack([name, list(reduced[1][1:]), state])


class _Reader:
    """One blob's decoding: the objects read so far, by the order they were written in."""

    def __init__(self) -> None:
        self.memo: list[Any] = []

    def unpack(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=self.ext, raw=False, strict_map_key=False)

    def ext(self, code: int, data: bytes) -> Any:
        memo = self.memo
        if code == _REF:
            index = int.from_bytes(data, "big")
            if index >= len(memo) or memo[index] is _UNSET:
                # Only a cycle refers to an object not yet made, and stored states have none.
                raise StateFormatError(f"reference {index} to an object not yet read")
            return memo[index]
        if not _REF < code <= _FLOATS:
            raise StateFormatError(f"unknown extension code {code}")
        slot = len(memo)
        memo.append(_UNSET)  # the slot in writing order, before the value's own items
        if code == _FLOATS:
            value: Any = _floats(data)
        elif code == _BIGINT:
            value = int(data.decode())
        elif code == _OBJECT:
            name, args, state = self.unpack(data)
            cls = _class(name)
            value = cls.__new__(cls, *args)
            _build(value, state)
        else:
            value = _rebuild(code, self.unpack(data))
        memo[slot] = value
        return value


_UNSET = object()


def _ext(pair: tuple[int, bytes]) -> msgpack.ExtType:
    # ExtType's own constructor re-checks what this module always gives it (an int code and
    # bytes): a sixth of the time of writing a state.
    return tuple.__new__(msgpack.ExtType, pair)


def _all_floats(items: tuple[Any, ...]) -> bool:
    return all(type(v) is float for v in items)


def _doubles(items: tuple[float, ...]) -> bytes:
    return array("d", items).tobytes()


def _floats(data: bytes) -> tuple[float, ...]:
    if len(data) % 8:
        raise StateFormatError("a float tuple's data is not whole doubles")
    values = array("d")
    values.frombytes(data)
    return tuple(values)


def _name(cls: type) -> str:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not allowed(name):
        raise TypeError(f"{name} is not a type stored states may hold")
    return name


def _class(name: str) -> type:
    found = _CLASSES.get(name)
    if found is None:
        _CLASSES[name] = found = _find(name)
    return found


_CLASSES: dict[str, type] = {}


def _find(name: str) -> type:
    if not allowed(name):
        raise StateFormatError(f"the stored state names {name!r}, not a type it may hold")
    module, _, qualname = name.rpartition(".")
    # Allowed modules are adaptd's core, river's or a configured task's: importing them runs
    # only code the daemon runs anyway.
    try:
        found: Any = sys.modules.get(module) or importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        raise StateFormatError(f"the stored state names {name!r}, which does not exist") from None
    if not isinstance(found, type) or f"{found.__module__}.{found.__qualname__}" != name:
        raise StateFormatError(f"the stored state names {name!r}, which is not that class")
    return found


def _rebuild(code: int, value: Any) -> Any:
    if code == _TUPLE:
        return tuple(value)
    if code == _SET:
        return set(value)
    if code == _FROZENSET:
        return frozenset(value)
    if code == _DEQUE:
        maxlen, items = value
        return deque(items, maxlen)
    if code == _ARRAY:
        dtype, shape, raw = value
        dt = np.dtype(dtype)
        if dt.kind not in _NUMERIC or dt.hasobject:
            raise StateFormatError(f"an array of dtype {dt} is not read")
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(raw):
            raise StateFormatError("an array's data does not match its shape")
        return np.frombuffer(raw, dt).reshape(shape).copy()
    if code == _SCALAR:
        dtype, raw = value
        dt = np.dtype(dtype)
        if dt.kind not in _NUMERIC or dt.hasobject or dt.itemsize != len(raw):
            raise StateFormatError(f"a scalar of dtype {dt} is not read")
        return np.frombuffer(raw, dt)[0]
    raise StateFormatError(f"extension code {code} out of place")


def _build(obj: Any, state: Any) -> None:
    """Pickle's BUILD: the state through ``__setstate__``, else into ``__dict__`` and slots."""
    if state is None:
        return
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        try:
            setstate(state)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            # river's Rust detectors panic on state they cannot parse, and a panic reaches
            # Python as a BaseException: a malformed blob, not a reason to stop the daemon.
            raise StateFormatError(
                f"{type(obj).__name__} refused its state: {exc!r}"[:300]
            ) from exc
        return
    slots = None
    if type(state) is tuple and len(state) == 2:
        state, slots = state
    if state:
        obj.__dict__.update(state)
    if slots:
        for key, value in slots.items():
            setattr(obj, key, value)
