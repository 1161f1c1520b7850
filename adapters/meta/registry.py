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

from ..discovery import defined_classes

__all__ = ["MEMBERS", "learners"]

MEMBERS = ("meta_update", "meta_parameters", "adapt", "state_dict", "load_state_dict")
"""The methods a class needs to count as a learner (the ``MetaLearner`` protocol's)."""


def learners() -> dict[str, type]:
    """``{algorithm: class}`` of every learner defined in the package's modules."""
    found: dict[str, type] = {}
    for cls in defined_classes(__package__ or "adaptd.adapters.meta"):
        if (
            getattr(cls, "algorithm", "")
            and isinstance(getattr(cls, "second_order", None), bool)
            and all(callable(getattr(cls, m, None)) for m in MEMBERS)
        ):
            found[cls.algorithm] = cls
    return found
