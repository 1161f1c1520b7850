"""Finding a family's classes by walking its package, so that adding a learner or a strategy is
adding a file: the registries of the meta-learners (:func:`adaptd.adapters.meta.learners`)
and of the continual strategies (:func:`adaptd.adapters.continual.strategies`) and the
few-shot conformance suite filter what :func:`defined_classes` finds.

Examples
--------
>>> names = {cls.__name__ for cls in defined_classes("adaptd.adapters.meta")}
>>> {"MAML", "MetaSGD"} <= names, "PolicyNet" in names  # imported there, defined elsewhere
(True, False)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

__all__ = ["defined_classes"]


def defined_classes(package: str) -> Iterator[type]:
    """Every class defined (not merely imported) in a module of ``package`` or of its
    subpackages, module by module in the order ``pkgutil.walk_packages`` finds them."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                yield value
