"""The daemon's own problem: which meta-learner adapts its policy best on real prices.

Every algorithm the daemon can run (``adaptation.meta_algorithm``) is meta-trained and
evaluated on the task the daemon solves after a shift, built from the real price series that
ship with river (Bitcoin, Brent crude, Apple; ``adaptd.adapters.tasks.series``):

- examples are the daemon's own: its feature vector and delayed, volatility-scaled label
  (``adaptd.daemon.core.features`` and ``labels`` with the default settings);
- a task is ``shots`` consecutive examples (the daemon's default 20), the last ``query_size``
  (8) held out as the query set, exactly as the daemon's adaptation requests;
- time split per series: tasks from the first 60 % of each series meta-train, the next 15 %
  validate (the default algorithm is chosen there), the last 25 % are the test (later data
  than any model saw; never used to choose anything);
- the network, inner steps, inner step size, meta-batch and Adam step are the daemon's
  defaults (``AdaptationSettings``); Reptile uses its ``meta_lr``.

Reported per algorithm, on the test tasks: query MSE after adaptation with 95 % CI, against
the same learner's initialisation without adaptation, the inner loop from a random
initialisation ("scratch") and a zero forecast (the no-skill forecast of a scaled return);
paired differences to no adaptation; meta-update milliseconds; adaptation p50/p99.

The data and learners are in :mod:`.protocol`, the training, tests and tuning in :mod:`.runs`,
the Markdown in :mod:`.tables`.

Examples
--------
>>> ALGORITHMS[0]
'maml'
"""

from __future__ import annotations

from .protocol import ALGORITHMS, series_examples, series_tasks
from .runs import run
from .tables import summary

__all__ = ["ALGORITHMS", "run", "series_examples", "series_tasks", "summary"]
