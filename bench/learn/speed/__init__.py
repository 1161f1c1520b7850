"""Speed benchmark: MAML meta-training and adaptation, ours against three references.

On the MAML sinusoid protocol (meta-batch 25, K = 10 support + 10 query points, amplitude
U[0.1, 5], phase U[0, π], x U[-5, 5], ``PolicyNet(1, (40, 40), activation="relu")``, inner step
0.01, Adam 1e-3), with 1 and 5 inner steps, in one process and one thread:

- **meta-training**, milliseconds per meta-iteration (meta-gradient plus Adam step), median over
  ``repeats`` after a warm-up, for ours (:class:`adaptd.adapters.meta.MAML`, backends "autograd"
  and "func"), a plain per-task loop, learn2learn's ``MAML`` and a hand-batched implementation
  (:mod:`.baselines`); the implementations take turns within every repeat,
  so load from other processes hits them alike. Ratios are to ours ("autograd");
- **agreement**: the largest relative difference of each implementation's meta-gradient from
  ours on one batch (the figures compare the same computation);
- **adaptation** of one task (K = 10), p50 and p99 milliseconds: ours (``learner.adapt``), the
  per-task loop (deep copy plus SGD) and learn2learn (``clone()`` plus first-order ``adapt``);
- **daemon policy adaptation**: ``fast_weights.adapt`` of ``PolicyNet(<daemon feature count>,
  (32, 32), "tanh")``, 5 steps at the daemon's default inner step size and backend, for
  K = 5, 20, 50, p50 and p99 over ``daemon_repeats`` adaptations.

learn2learn is optional (``python -m bench.learn.learn2learn`` builds it); without it
its rows say "unavailable".

The protocol and its meta-batches are in :mod:`.protocol`, the measurements in :mod:`.runs`,
the Markdown in :mod:`.tables`.

Examples
--------
>>> IMPLEMENTATIONS[0], PROTOCOL["inner_steps"]
('ours', [1, 5])
"""

from __future__ import annotations

from .protocol import IMPLEMENTATIONS, LABELS, PROTOCOL, sinusoid_batch
from .runs import run
from .tables import summary

__all__ = ["IMPLEMENTATIONS", "LABELS", "PROTOCOL", "run", "sinusoid_batch", "summary"]
