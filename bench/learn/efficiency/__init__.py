"""Learning efficiency on sinusoid regression: examples and wall time that training from scratch
needs to reach the error a meta-learned model reaches after K = 5 and K = 10 examples.

- **Meta-learned**: MAML on the ``sinusoid`` section's protocol. A full run of that section
  leaves its selected MAML weights per K in :func:`~bench.learn.sinusoid.cache_path`;
  they are used when their protocol and seed match, otherwise MAML is trained here with
  ``fallback_iterations`` meta-iterations (the result says which). On each of ``test_tasks``
  held-out waves (own seed), it adapts on K points with ``adapt_steps`` steps of 0.01; the
  target is the mean query MSE, and its wall time the median time of one ``adapt``.
- **From scratch**: the same ``PolicyNet(1, (40, 40), "relu")``, freshly initialised per task,
  trained on the first ``n`` points of the same waves (nested training sets, ``n`` in
  ``sizes``) with full-batch Adam until converged: the training MSE fell by less than
  ``tolerance`` (relative) over ``check_every`` steps, or ``max_steps``. Adam's step size is
  chosen per ``n`` from ``lrs`` by the query MSE on ``val_tasks`` other waves (never the test
  waves). The tasks of one ``n`` train at once as stacked weights (independent per task, as
  Adam is element-wise); the wall time is measured separately on single tasks.

The smallest ``n`` whose mean query MSE is at or below the target gives the example ratio
``n / K`` (with a log-linear interpolation between the two grid sizes around the crossing) and
the time ratio (from-scratch training seconds over adaptation seconds, both CPU time of one
thread, which is the wall time on an idle core and does not depend on the machine's load;
meta-training time is not amortised). The design's target is 10x.

The sizes and the shared waves are in :mod:`.protocol`, the from-scratch training in
:mod:`.scratch`, the section's run and the ratios in :mod:`.runs`, the Markdown in
:mod:`.tables`.

Examples
--------
>>> PROTOCOL["shots"], PROTOCOL["sizes"][-1]
([5, 10], 1000)
"""

from __future__ import annotations

from .protocol import PROTOCOL, QUICK
from .runs import crossing, run
from .scratch import from_scratch, scratch_curve_point
from .tables import summary

__all__ = ["PROTOCOL", "QUICK", "crossing", "from_scratch", "run", "scratch_curve_point", "summary"]
