"""Continual-learning benchmarks of ``adaptd.adapters.continual``, run by
``make bench-continual``.

``python -m bench.learn.continual`` runs the sections of :data:`SECTIONS` (each a
module here with ``run(*, quick, seed)`` and ``summary(result)``) and writes
``docs/bench/continual.json`` and the "Continual-learning benchmarks" section of
``docs/benchmarks.md`` (see :mod:`.harness`): ``permuted`` (1000 permuted digits and
Fashion-MNIST tasks), ``split`` (5 tasks of 2 classes, task- and class-incremental, with
published reference numbers), ``market`` (regime segments of real prices as regression tasks)
and ``cost`` (time and memory against naive fine-tuning). Data are in :mod:`.data`, the
per-strategy hyperparameters and their validation grids in :mod:`.configs`.

>>> SECTIONS
('permuted', 'split', 'market', 'cost')
"""

from __future__ import annotations

from .harness import SECTIONS

__all__ = ["SECTIONS"]
