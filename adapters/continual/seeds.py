"""Seeds derived from a run's own seed, one for each task, column or widening, so that every
random draw of a continual run is fixed by the seeds it was given and by nothing else (not by
the global RNG, not by how many draws an earlier task made).

``derive_seed(seed, index)`` is ``seed * 1_000_003 + index``. 1 000 003 is a prime above any
number of tasks a run reaches, so two pairs ``(seed, index)`` with ``index`` below it never
share a derived seed. ``offset`` keeps two uses of one index apart (PackNet retrains and
re-initialises at the same position, each from its own generator).

Examples
--------
>>> derive_seed(0, 3), derive_seed(2, 3), derive_seed(2, 3, offset=500_009)
(3, 2000009, 2500018)
"""

from __future__ import annotations

__all__ = ["derive_seed"]

_SPREAD = 1_000_003


def derive_seed(seed: int, index: int, *, offset: int = 0) -> int:
    """The seed of draw ``index`` (a task id, a position, a count) of a run seeded ``seed``;
    ``offset`` names another stream of draws for the same index."""
    return seed * _SPREAD + index + offset
