"""Every continual-learning strategy of this package, found by walking its modules: adding a
strategy file adds it here (and so to the conformance suite and the benchmarks).

A strategy is a subclass of :class:`~adaptd.adapters.continual.protocol.Strategy` defined in a
module of ``adaptd.adapters.continual`` with its own ``name``.

Examples
--------
>>> "naive" in strategies()
True
>>> strategies()["naive"].__name__
'Strategy'
"""

from __future__ import annotations

from ..discovery import defined_classes
from .protocol import Strategy

__all__ = ["strategies"]


def strategies() -> dict[str, type[Strategy]]:
    """``{name: class}`` of every strategy, plain fine-tuning ("naive") included."""
    found: dict[str, type[Strategy]] = {Strategy.name: Strategy}
    for cls in defined_classes(__package__ or "adaptd.adapters.continual"):
        if issubclass(cls, Strategy) and cls.name and cls.name != Strategy.name:
            found[cls.name] = cls
    return found
