"""Every meta-learner of this package, found by walking its modules: adding a learner file
adds it here (and so to the conformance suite), with no table to update.

A learner is a class defined in a module of ``adaptd.adapters.meta`` with a non-empty
``algorithm`` name, a boolean ``second_order`` and the ``MetaLearner`` protocol's methods.

Examples
--------
>>> sorted(learners())
['anil', 'fomaml', 'maml', 'metasgd', 'reptile']
>>> learners()["maml"].__name__
'MAML'
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["MEMBERS", "learners"]

MEMBERS = ("meta_update", "meta_parameters", "adapt", "state_dict", "load_state_dict")
"""The methods a class needs to count as a learner (the ``MetaLearner`` protocol's)."""


def learners() -> dict[str, type]:
    """``{algorithm: class}`` of every learner defined in the package's modules."""
    package = importlib.import_module(__package__ or "adaptd.adapters.meta")
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and getattr(value, "algorithm", "")
                and isinstance(getattr(value, "second_order", None), bool)
                and all(callable(getattr(value, m, None)) for m in MEMBERS)
            ):
                found[value.algorithm] = value
    return found
