"""Learning benchmarks of ``adaptd.adapters``, run by ``make bench-learn``.

``python -m bench.learn`` runs the sections of :data:`SECTIONS` (each a module or package here
with ``run(*, quick, seed)`` and ``summary(result)``) and writes ``docs/bench/learn.json`` and
the "Learning benchmarks" section of ``docs/benchmarks.md`` (see :mod:`.harness`). ``speed``
compares meta-training and adaptation times with reference implementations
(:mod:`.speed.baselines`), among them learn2learn, a benchmark-only baseline built by
``python -m bench.learn.learn2learn``.

>>> SECTIONS[-1]
'speed'
"""

from __future__ import annotations

from .harness import SECTIONS

__all__ = ["SECTIONS"]
