"""Convergence benchmark: how many distinct meta-training tasks MAML needs.

On the MAML sinusoid protocol (K = 10 support + 10 query points, meta-batch 25,
``PolicyNet(1, (40, 40), activation="relu")``, one inner step of 0.01, Adam 1e-3;
:class:`adaptd.adapters.meta.MAML`), meta-train with a fixed pool of ``M`` waves
(:class:`adaptd.adapters.tasks.SinusoidTasks` with ``pool_size=M``: pools of one seed are
nested, every task has fresh inputs ``x``) and with fresh waves in every task, for the same
number of meta-iterations and from the same initialisation (per seed). Then:

- **checkpoint selection** on held-out validation waves (their own seed, never the test
  waves): every ``eval_every`` iterations the mean query MSE after one step on the validation
  tasks is recorded and the best checkpoint is kept (``meta_train`` with a stopper that never
  stops, so every ``M`` gets the same iterations);
- **test** on the 600 held-out tasks (100 query points each, the same tasks for every run):
  MSE after 1 and 10 steps, averaged over seeds per task, with a 95 % interval over tasks;
- **ratio** of each pool's test error to the fresh-task error, with a paired bootstrap 95 %
  interval over test tasks (the runs share their test tasks);
- **the smallest M within 10 %** of fresh tasks (:func:`smallest_within`), interpolated on
  ``log M`` when it falls between two pool sizes;
- the fresh-task **validation curve**, to show how converged training is at that count.

Runs (one per pool size and seed) go to a ``multiprocessing`` pool of spawned workers, each
with one torch thread. Evaluation adapts all tasks at once (:func:`adapted_errors`), the same
maths as ``learner.adapt`` task by task.

The protocol is in :mod:`.protocol`, one run in :mod:`.training`, the section's run and its
statistics in :mod:`.runs`, the Markdown in :mod:`.tables`.

Examples
--------
>>> PROTOCOL["target"], FULL["pools"][-1]
(100, 1000)
"""

from __future__ import annotations

from .protocol import FULL, PROTOCOL, QUICK
from .runs import measure, run, smallest_within
from .tables import summary
from .training import adapted_errors

__all__ = [
    "FULL",
    "PROTOCOL",
    "QUICK",
    "adapted_errors",
    "measure",
    "run",
    "smallest_within",
    "summary",
]
