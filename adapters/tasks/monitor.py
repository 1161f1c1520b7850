"""Convergence monitoring: evaluation on a meta-validation split, with early stopping.

``meta_train`` runs any ``MetaLearner`` or ``FewShotClassifier`` on batches from a sampler,
evaluates it every ``eval_every`` meta-iterations on fixed validation tasks (classes or waves
disjoint from training), and can stop early and restore the best state seen. The evaluation
functions return an ``Estimate`` (mean over tasks with a 95 % confidence half-width).

``evaluate_adaptation`` needs a number of inner steps, but a ``MetaLearner.adapt`` takes its
steps from ``learner.inner_steps``; it sets that attribute for the duration of the evaluation
and restores it afterwards (even on error). An ``adapt(..., steps=None)`` argument in the
protocol would make this cleaner.

Examples
--------
>>> from adaptd.adapters.meta import FOMAML
>>> from adaptd.adapters.network import PolicyNet
>>> from adaptd.adapters.tasks import SinusoidTasks
>>> source = SinusoidTasks(seed=0)
>>> val = source.evaluation_tasks(10, k_support=10, n_query=20, seed=5)
>>> net = PolicyNet(1, (20, 20), activation="relu")
>>> learner = FOMAML(net, inner_steps=1, inner_lr=0.01, meta_lr=3e-3)
>>> history = meta_train(
...     learner, lambda: source.sample(5, 10, 10), val, iterations=20, eval_every=10,
...     evaluate=lambda lrn, tasks: evaluate_adaptation(lrn, tasks, steps=1),
...     stopper=EarlyStopping(patience=3))
>>> history.val_steps, history.iterations, history.stopped_early
([0, 10, 20], 20, False)
>>> history.val_values[-1] < history.val_values[0]
True
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import functional_call

from ..checks import non_negative_int, one_of, positive_int
from ..fast_weights import task_loss
from ..protocol import Task
from .stats import Estimate

__all__ = [
    "MODES",
    "EarlyStopping",
    "Mode",
    "TrainingHistory",
    "evaluate_adaptation",
    "evaluate_classifier",
    "meta_train",
    "query_loss",
]

Mode = Literal["min", "max"]
"""Whether a lower ("min") or a higher ("max") validation value is better."""
MODES: tuple[Mode, ...] = ("min", "max")

Evaluate = Callable[[Any, Sequence[Task]], "float | Estimate"]
"""``evaluate(learner, val_tasks)``: a float or an ``Estimate`` (its mean is used)."""


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` evaluations.

    Parameters
    ----------
    patience
        Evaluations without improvement before ``should_stop`` turns true.
    min_delta
        Smallest change that counts as an improvement.
    mode
        ``"min"`` for losses, ``"max"`` for accuracies.

    Examples
    --------
    >>> stopper = EarlyStopping(patience=2)
    >>> for step, loss in enumerate([1.0, 0.5, 0.6, 0.55]):
    ...     _ = stopper.update(loss, state={"w": step}, step=step)
    >>> stopper.should_stop, stopper.best, stopper.best_step, stopper.best_state
    (True, 0.5, 1, {'w': 1})
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: Mode = "min") -> None:
        positive_int("patience", patience)
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be finite and >= 0, got {min_delta!r}")
        one_of("mode", mode, MODES)
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_state: Any = None
        self.best_step: int | None = None
        self.bad_evaluations = 0
        self.improved = False

    def update(self, value: float, state: Any = None, step: int | None = None) -> EarlyStopping:
        """Record one evaluation; ``state`` is deep-copied when ``value`` is a new best.

        A non-finite value (a diverged run) never counts as an improvement.
        """
        value = float(value)
        if not math.isfinite(value):
            self.improved = False
        elif self.best is None:
            self.improved = True
        elif self.mode == "min":
            self.improved = value < self.best - self.min_delta
        else:
            self.improved = value > self.best + self.min_delta
        if self.improved:
            self.best, self.best_step = value, step
            self.best_state = copy.deepcopy(state)
            self.bad_evaluations = 0
        else:
            self.bad_evaluations += 1
        return self

    @property
    def should_stop(self) -> bool:
        """True after ``patience`` evaluations in a row without improvement."""
        return self.bad_evaluations >= self.patience

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}, best={self.best}, best_step={self.best_step})"
        )


@dataclass
class TrainingHistory:
    """What ``meta_train`` did; ``val_*`` lists are aligned."""

    train_loss: list[float] = field(default_factory=list)
    """Per meta-iteration: ``MetaStats.query_loss_after`` or ``EpisodeStats.loss``."""
    val_steps: list[int] = field(default_factory=list)
    """Meta-iterations after which validation ran (0 = before training)."""
    val_values: list[float] = field(default_factory=list)
    """The validation metric at those iterations."""
    iterations: int = 0
    """Meta-iterations run."""
    stopped_early: bool = False
    best_step: int | None = None
    """Iteration of the best validation value (with a stopper), else None."""
    best_value: float | None = None
    restored: bool = False
    """True when the learner was reset to the best state at the end."""
    seconds: float = 0.0
    """Wall time, validation included."""


def meta_train(
    learner: Any,
    sample_batch: Callable[[], Sequence[Task]],
    val_tasks: Sequence[Task],
    *,
    iterations: int,
    eval_every: int,
    evaluate: Evaluate,
    stopper: EarlyStopping | None = None,
    restore_best: bool = True,
) -> TrainingHistory:
    """Meta-train ``learner`` with validation every ``eval_every`` iterations.

    Validation runs before the first iteration, every ``eval_every`` iterations and after the
    last. With a ``stopper``, training ends when it says so, and (``restore_best``) the
    learner is reset to the best state it recorded (``learner.state_dict()`` copies).
    """
    for name, value in (("iterations", iterations), ("eval_every", eval_every)):
        positive_int(name, value)
    start = time.perf_counter()
    history = TrainingHistory()

    def validate(step: int) -> bool:
        value = _as_float(evaluate(learner, val_tasks))
        history.val_steps.append(step)
        history.val_values.append(value)
        if stopper is None:
            return False
        stopper.update(value, learner.state_dict(), step=step)
        return stopper.should_stop

    stop = validate(0)
    for i in range(1, iterations + 1):
        if stop:
            history.stopped_early = True
            break
        stats = learner.meta_update(sample_batch())
        loss = stats.query_loss_after if hasattr(stats, "query_loss_after") else stats.loss
        history.train_loss.append(float(loss))
        history.iterations = i
        if i % eval_every == 0 or i == iterations:
            stop = validate(i)
    if stopper is not None:
        history.best_step, history.best_value = stopper.best_step, stopper.best
        if restore_best and stopper.best_state is not None:
            learner.load_state_dict(stopper.best_state)
            history.restored = True
    history.seconds = time.perf_counter() - start
    return history


def query_loss(learner: Any, params: dict[str, Tensor], x: Tensor, y: Tensor) -> float:
    """The learner's task loss (``learner.loss``, default "mse") of ``params`` on ``(x, y)``."""
    with torch.no_grad():
        return float(task_loss(learner.net, params, x, y, getattr(learner, "loss", "mse")))


def evaluate_adaptation(learner: Any, tasks: Sequence[Task], steps: int | None = None) -> Estimate:
    """Mean query loss after adapting on each task's support set with ``steps`` inner steps.

    ``steps=None`` uses the learner's own ``inner_steps``; ``0`` evaluates the
    initialisation ``learner.params`` itself. Deadlines are not used.
    """
    losses = [
        query_loss(learner, params, task.query_x, task.query_y)
        for task, params in zip(tasks, _adapted(learner, tasks, steps), strict=True)
    ]
    return Estimate.of(losses)


def evaluate_classifier(learner: Any, tasks: Sequence[Task], steps: int | None = None) -> Estimate:
    """Mean query accuracy over episodes, in ``[0, 1]``.

    A ``FewShotClassifier`` is fitted on each support set; a ``MetaLearner`` (cross-entropy
    loss, logits out) is adapted with ``steps`` inner steps (as ``evaluate_adaptation``) and
    predicts the arg-max of its logits.
    """
    if not tasks:
        raise ValueError("tasks is empty")
    if hasattr(learner, "fit"):
        if steps is not None:
            raise ValueError("steps applies to meta-learners, not to a FewShotClassifier")
        with torch.no_grad():
            predictions = [learner.fit(t.support_x, t.support_y).predict(t.query_x) for t in tasks]
    else:
        adapted = _adapted(learner, tasks, steps)  # needs gradients: outside no_grad
        with torch.no_grad():
            predictions = [
                functional_call(learner.net, params, (t.query_x,)).argmax(dim=-1)
                for t, params in zip(tasks, adapted, strict=True)
            ]
    return Estimate.of(
        float((p == t.query_y).double().mean()) for p, t in zip(predictions, tasks, strict=True)
    )


def _adapted(learner: Any, tasks: Sequence[Task], steps: int | None) -> list[dict[str, Tensor]]:
    if not tasks:
        raise ValueError("tasks is empty")
    non_negative_int("steps", steps, optional=True)
    if steps == 0:
        return [learner.params for _ in tasks]
    return [learner.adapt(t.support_x, t.support_y, steps=steps).params for t in tasks]


def _as_float(value: float | Estimate) -> float:
    return float(value.mean) if isinstance(value, Estimate) else float(value)
