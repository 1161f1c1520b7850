"""The learning core of adaptd, usable without the daemon.

``PolicyNet`` and ``init_params`` (the network), ``adapt`` (fast-weight few-shot adaptation),
the ``MetaLearner`` protocol with ``Reptile`` and ``FOMAML``, ``NumpyPolicy`` (torch-free
serving) and the safetensors weights codec.

Names are resolved lazily (PEP 562 ``__getattr__``): importing ``adaptd.adapters`` imports
nothing heavy, and a torch-backed name imports torch on first use. This keeps the torch-free
modules (``serving``, ``codec``, ``protocol``) importable by clients and by the daemon's event
loop without pulling in torch, while ``from adaptd.adapters import Reptile`` still works.

>>> import adaptd.adapters as adapters
>>> adapters.NumpyPolicy.__module__
'adaptd.adapters.serving'
>>> adapters.PolicyNet(in_dim=4).hidden
(32, 32)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import params_from_bytes, params_to_bytes, sha256_hex
    from .fast_weights import AdaptResult, Params, adapt, grad_and_loss, mse
    from .meta import FOMAML, Reptile
    from .network import PolicyNet, init_params
    from .protocol import MetaLearner, MetaStats, Task
    from .serving import NumpyPolicy

__all__ = [
    "FOMAML",
    "AdaptResult",
    "MetaLearner",
    "MetaStats",
    "NumpyPolicy",
    "Params",
    "PolicyNet",
    "Reptile",
    "Task",
    "adapt",
    "grad_and_loss",
    "init_params",
    "mse",
    "params_from_bytes",
    "params_to_bytes",
    "sha256_hex",
]

_SOURCE = {
    "FOMAML": "meta",
    "AdaptResult": "fast_weights",
    "MetaLearner": "protocol",
    "MetaStats": "protocol",
    "NumpyPolicy": "serving",
    "Params": "fast_weights",
    "PolicyNet": "network",
    "Reptile": "meta",
    "Task": "protocol",
    "adapt": "fast_weights",
    "grad_and_loss": "fast_weights",
    "init_params": "network",
    "mse": "fast_weights",
    "params_from_bytes": "codec",
    "params_to_bytes": "codec",
    "sha256_hex": "codec",
}


def __getattr__(name: str) -> Any:
    source = _SOURCE.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
