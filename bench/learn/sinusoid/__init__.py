"""Sinusoid regression on the MAML paper's protocol: MAML, FOMAML, Reptile, Meta-SGD, ANIL and
the paper's "pretrained on all tasks, then fine-tuned" baseline.

Protocol (Finn, Abbeel & Levine, 2017, section 5.1): amplitude U[0.1, 5], phase U[0, π],
x U[−5, 5]; ``PolicyNet(1, (40, 40), activation="relu")``; meta-batch 25 tasks of K support
and K query points; Adam 1e-3 outside, inner step 0.01 and, as the paper trained its sinusoid
MAML, one inner step in training. Every (learner, K) is trained on fresh tasks for the same
number of meta-iterations (:data:`PROTOCOL`; Reptile fewer, see below), validated every
``eval_every`` iterations on ``val_tasks`` held-out waves (own seed, never the test waves)
after the learner's own inner steps, and the best validation checkpoint is kept
(``monitor.EarlyStopping``). The test is 600 new waves with K support and 100 query points:
the query MSE with a 95 % interval after 0, 1 and 10 inner steps
(:func:`test_mse`; Meta-SGD with its learned step sizes; a task whose adaptation diverges is
counted, not averaged, and fails the reference checks).

Where this differs from the papers:

- Reptile uses the settings of the Reptile authors' sinusoid code (:data:`REPTILE`): inner step
  0.02 and 5 steps on all 2K points of a task, outer step 0.1 annealed linearly to 0; it is
  evaluated at its own inner step 0.02. The meta-batch stays 25 (theirs was 1, for 30,000
  iterations), and it gets a third of the iterations of the others, as each costs about 3x.
- Meta-SGD starts every learned step size at 0.01 (the paper draws them in [0.005, 0.1]).
- The iteration budget (:data:`PROTOCOL`) is the paper's 70,000 (Reptile: its share). At
  30,000, MAML was still improving (its best validation error fell 11 to 26 % over the
  second half) and missed the reference figures after one step; the whole section takes about
  25 minutes on two idle cores at 70,000. The result records the validation curve and the
  CPU seconds of every job, to show how far from converged each run is.
- The baseline regresses all tasks jointly with the same Adam and is fine-tuned with gradient
  steps of 0.01 and, separately, with the step size (of :data:`FINE_TUNE_LRS`) that is best on
  the validation waves, per number of steps.

The (learner, K) trainings run in a pool of ``workers`` spawned processes. The MAML initial
weights of a full run are saved (:func:`cache_path`) for the ``efficiency`` section.

The protocol and the learners are in :mod:`.protocol` (the pretrained baseline in
:mod:`.pretrained`), one training and its test in :mod:`.training`, the section's run and its
reference checks in :mod:`.runs`, the Markdown in :mod:`.tables`.

Examples
--------
>>> sorted(REFERENCES)
[('maml', 5), ('maml', 10)]
"""

from __future__ import annotations

from .pretrained import JointRegression
from .protocol import (
    FINE_TUNE_LRS,
    LEARNERS,
    PROTOCOL,
    QUICK,
    REFERENCES,
    REPTILE,
    cache_path,
    make_learner,
    make_net,
)
from .runs import passes, run
from .tables import summary
from .training import last_half_gain, test_mse, train_and_test

__all__ = [
    "FINE_TUNE_LRS",
    "LEARNERS",
    "PROTOCOL",
    "QUICK",
    "REFERENCES",
    "REPTILE",
    "JointRegression",
    "cache_path",
    "last_half_gain",
    "make_learner",
    "make_net",
    "passes",
    "run",
    "summary",
    "test_mse",
    "train_and_test",
]
