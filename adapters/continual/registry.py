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

import importlib
import pkgutil

from .protocol import Strategy

__all__ = ["strategies"]


def strategies() -> dict[str, type[Strategy]]:
    """``{name: class}`` of every strategy, plain fine-tuning ("naive") included."""
    package = importlib.import_module(__package__ or "adaptd.adapters.continual")
    found: dict[str, type[Strategy]] = {Strategy.name: Strategy}
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Strategy)
                and value.__module__ == module.__name__
                and value.name
                and value.name != Strategy.name
            ):
                found[value.name] = value
    return found
