"""Policy weights on the wire: safetensors bytes of float32 arrays, and their content hash.

Torch-free at import time: torch tensors are accepted and converted with
``.detach().cpu().numpy()`` by duck typing, so clients without torch can decode.

The bytes depend only on the names, shapes and values (safetensors writes a sorted header
and no metadata is added), so equal weights give equal bytes and equal ``sha256_hex``: the
hash identifies a policy. Non-finite weights are refused, so a diverged adaptation cannot be
published or checkpointed by accident.

Examples
--------
>>> import numpy as np
>>> params = {"layers.0.weight": np.ones((2, 3)), "layers.0.bias": np.zeros(2)}
>>> data = params_to_bytes(params)
>>> decoded = params_from_bytes(data)
>>> sorted(decoded), decoded["layers.0.weight"].dtype
(['layers.0.bias', 'layers.0.weight'], dtype('float32'))
>>> params_to_bytes(dict(reversed(params.items()))) == data
True
>>> len(sha256_hex(data))
64
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

__all__ = ["params_from_bytes", "params_to_bytes", "sha256_hex"]


def params_to_bytes(params: Mapping[str, Any]) -> bytes:
    """Safetensors bytes of ``params`` (numpy arrays or torch tensors), cast to float32."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise ValueError(f"parameter names must be strings, got {name!r}")
        array = _to_numpy(value)
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"parameter {name} is not numeric (dtype {array.dtype})")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"parameter {name} has non-finite values")
        arrays[name] = array
    # Sorted insertion as well as safetensors' own ordering: bytes must not depend on dict order.
    return save({name: arrays[name] for name in sorted(arrays)})


def params_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """The float32 arrays from ``params_to_bytes`` output, in name order."""
    try:
        arrays = load(bytes(data))
    except (SafetensorError, ValueError, TypeError) as exc:
        raise ValueError(f"not safetensors weights ({len(data)} bytes): {exc}") from exc
    for name, array in arrays.items():
        if array.dtype != np.float32:
            raise ValueError(f"parameter {name} is {array.dtype}, expected float32")
    return {name: arrays[name] for name in sorted(arrays)}


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (64 characters)."""
    return hashlib.sha256(data).hexdigest()


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value)
