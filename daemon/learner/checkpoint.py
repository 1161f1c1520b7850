"""The meta-learner's checkpoint as bytes: safetensors for the tensors, msgpack for the rest.

A checkpoint is stored in Redis and read back by a restarted daemon, so it must not be a
pickle (``torch.save``): it holds only what a state dict holds, and is read without running
anything:

- :data:`~.messages.CHECKPOINT_MAGIC`, then the length of the header (8 bytes, big-endian);
- the header: the state as msgpack, where dicts (with ``str`` or ``int`` keys), lists,
  numbers, strings and ``None`` are msgpack's own, a tuple is extension 1 and a tensor is
  extension 2 naming its entry in the safetensors part;
- the tensors, as one safetensors file.

>>> state = {"params": {"w": torch.ones(2, 3)}, "optimizer": {"state": {0: {"step": 3}},
...          "param_groups": [{"betas": (0.9, 0.999), "params": [0]}]}}
>>> back = loads(dumps(state))
>>> back["optimizer"]["param_groups"][0]["betas"], back["params"]["w"].shape
((0.9, 0.999), torch.Size([2, 3]))
"""

from __future__ import annotations

from typing import Any

import msgpack
import safetensors.torch
import torch

from .messages import CHECKPOINT_MAGIC

__all__ = ["CheckpointError", "dumps", "loads"]

_TUPLE, _TENSOR = 1, 2
_LENGTH = 8


class CheckpointError(ValueError):
    """Bytes that are not a checkpoint of this format, or a state it cannot hold."""


def dumps(state: Any) -> bytes:
    """``state`` (nested dicts, lists and tuples of tensors, numbers, strings, None)."""
    writer = _Writer()
    try:
        header = _pack(state, writer.default)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"cannot write the checkpoint: {exc}") from exc
    return (
        CHECKPOINT_MAGIC
        + len(header).to_bytes(_LENGTH, "big")
        + header
        + safetensors.torch.save(writer.tensors)
    )


def loads(data: bytes) -> Any:
    """The state :func:`dumps` wrote; :class:`CheckpointError` for anything else."""
    if not data.startswith(CHECKPOINT_MAGIC):
        raise CheckpointError("not a checkpoint of this format")
    start = len(CHECKPOINT_MAGIC) + _LENGTH
    size = int.from_bytes(data[len(CHECKPOINT_MAGIC) : start], "big")
    if start + size > len(data):
        raise CheckpointError("the checkpoint is cut short")
    try:
        reader = _Reader(safetensors.torch.load(data[start + size :]))
    except Exception as exc:  # safetensors raises its own error type
        raise CheckpointError(f"the checkpoint's tensors cannot be read: {exc}") from exc
    try:
        return _unpack(data[start : start + size], reader.ext)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc!r}"[:300]) from exc


# Methods of small objects rather than nested functions that call themselves: those are
# reference cycles, which would hold every tensor until a full collection.


class _Writer:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def default(self, obj: Any) -> msgpack.ExtType:
        if type(obj) is tuple:
            return msgpack.ExtType(_TUPLE, _pack(list(obj), self.default))
        if isinstance(obj, torch.Tensor):
            key = str(len(self.tensors))
            # Own, contiguous storage: safetensors refuses tensors that share memory.
            self.tensors[key] = obj.detach().cpu().contiguous().clone()
            return msgpack.ExtType(_TENSOR, key.encode())
        raise TypeError(f"a checkpoint holds no {type(obj).__name__}")


class _Reader:
    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def ext(self, code: int, payload: bytes) -> Any:
        if code == _TUPLE:
            return tuple(_unpack(payload, self.ext))
        if code == _TENSOR:
            return self.tensors[payload.decode()]
        raise CheckpointError(f"unknown extension code {code} in the checkpoint")


def _pack(value: Any, default: Any) -> bytes:
    # strict_types: a tuple goes to ``default`` and comes back a tuple (optimizer betas).
    return msgpack.packb(value, default=default, strict_types=True, use_bin_type=True)


def _unpack(data: bytes, ext: Any) -> Any:
    return msgpack.unpackb(data, ext_hook=ext, raw=False, strict_map_key=False)
