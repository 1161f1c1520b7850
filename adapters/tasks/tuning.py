"""Hyperparameter auto-tuning of a meta-learner on the meta-validation split.

Tunes the inner step size, the number of inner steps and the meta step size by a small,
seeded search: random search (every trial gets the same budget) or successive halving
(Jamieson & Talwalkar, 2016: train all trials briefly, keep the best ``1/eta``, train the
survivors ``eta`` times longer, and so on until one is left). Step sizes are drawn
log-uniformly, step counts uniformly over integers.

The tuner sees only what it is given: a learner factory, a seeded batch stream per trial and
the *validation* tasks. It never receives test tasks, so a configuration chosen here can be
evaluated on the test split without selection bias. Every trial gets the batch stream
``make_sampler(seed)`` with the same seed, so configurations are compared on the same
meta-training tasks (common random numbers).

Examples
--------
>>> space = SearchSpace(inner_lr=(1e-3, 1.0), inner_steps=(1, 5), meta_lr=(1e-3, 1e-3))
>>> configs = space.sample(3, seed=0)
>>> [c.meta_lr for c in configs], all(1 <= c.inner_steps <= 5 for c in configs)
([0.001, 0.001, 0.001], True)

References
----------
Jamieson, K. & Talwalkar, A. (2016). Non-stochastic best arm identification and
hyperparameter optimization. AISTATS. Bergstra, J. & Bengio, Y. (2012). Random search for
hyper-parameter optimization. JMLR.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from ..checks import int_at_least, one_of, positive_int
from ..protocol import Task
from .monitor import MODES, Evaluate, Mode, _as_float, evaluate_adaptation

__all__ = ["Config", "SearchSpace", "Trial", "TuningResult", "tune"]


class Config(NamedTuple):
    """One hyperparameter configuration."""

    inner_lr: float
    inner_steps: int
    meta_lr: float


class SearchSpace(NamedTuple):
    """Inclusive ``(low, high)`` ranges; ``low == high`` fixes a hyperparameter."""

    inner_lr: tuple[float, float] = (1e-3, 0.5)
    inner_steps: tuple[int, int] = (1, 10)
    meta_lr: tuple[float, float] = (1e-4, 1e-1)

    def sample(self, n: int, *, seed: int) -> list[Config]:
        """``n`` seeded configurations: rates log-uniform, steps uniform over integers."""
        for name in ("inner_lr", "meta_lr"):
            low, high = getattr(self, name)
            if not (0 < low <= high and math.isfinite(high)):
                raise ValueError(f"{name} range must be 0 < low <= high, got {(low, high)}")
        low, high = self.inner_steps
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ValueError(
                f"inner_steps range must be integers 1 <= low <= high, got {(low, high)}"
            )
        rng = np.random.default_rng(seed)

        def log_uniform(bounds: tuple[float, float]) -> float:
            if bounds[0] == bounds[1]:
                return float(bounds[0])  # fixed exactly, not through exp(log(.))
            return float(np.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))

        return [
            Config(
                log_uniform(self.inner_lr),
                int(rng.integers(low, high + 1)),
                log_uniform(self.meta_lr),
            )
            for _ in range(n)
        ]


class Trial(NamedTuple):
    """One evaluation of one configuration (successive halving gives several per config)."""

    index: int
    """Which configuration (position in the sampled or given list)."""
    config: Config
    rung: int
    """0 for random search; the halving round otherwise."""
    iterations: int
    """Meta-iterations trained so far (cumulative)."""
    value: float
    """Validation metric (nan when training diverged)."""


class TuningResult(NamedTuple):
    """The winning configuration, its validation value and every trial."""

    best: Config
    best_value: float
    trials: list[Trial]


def tune(
    factory: Callable[[float, int, float], Any],
    make_sampler: Callable[[int], Callable[[], Sequence[Task]]],
    val_tasks: Sequence[Task],
    *,
    iterations: int,
    trials: int = 8,
    space: SearchSpace | None = None,
    configs: Sequence[Config] | None = None,
    method: Literal["random", "halving"] = "random",
    eta: int = 3,
    evaluate: Evaluate | None = None,
    mode: Mode = "min",
    data_seed: int = 0,
    seed: int = 0,
) -> TuningResult:
    """Search configurations on the validation tasks; returns the best and the trial table.

    Parameters
    ----------
    factory
        ``(inner_lr, inner_steps, meta_lr) -> learner`` (a ``MetaLearner``).
    make_sampler
        ``seed -> (() -> batch of tasks)``: a fresh, seeded meta-training stream per trial.
    val_tasks
        The meta-validation tasks; the only tasks any configuration is judged on.
    iterations
        Meta-iterations per trial (random search), or of the first rung (halving; survivors
        of rung ``r`` have trained ``iterations · eta ** r`` in total).
    trials, space, seed
        ``trials`` configurations drawn from ``space`` (default ``SearchSpace()``) with ``seed``.
    configs
        Explicit configurations instead of sampling (``trials`` and ``space`` are then unused).
    method, eta
        "random" or "halving"; ``eta >= 2`` is the halving factor.
    evaluate, mode
        The validation metric and whether lower ("min") or higher ("max") is better; the
        default is the mean query loss after the learner's own ``inner_steps`` adaptation.
    data_seed
        Seed passed to ``make_sampler`` for every trial.
    """
    positive_int("iterations", iterations)
    one_of("method", method, ("random", "halving"))
    int_at_least("eta", eta, 2)
    one_of("mode", mode, MODES)
    if not val_tasks:
        raise ValueError("val_tasks is empty")
    if configs is None:
        positive_int("trials", trials)
        configs = (space or SearchSpace()).sample(trials, seed=seed)
    configs = [Config(float(c[0]), int(c[1]), float(c[2])) for c in configs]
    if not configs:
        raise ValueError("configs is empty")
    metric = evaluate or (lambda learner, tasks: evaluate_adaptation(learner, tasks))
    sign = 1.0 if mode == "min" else -1.0

    def rank_key(trial: Trial) -> float:
        return sign * trial.value if math.isfinite(trial.value) else math.inf

    runs = [(factory(*c), make_sampler(data_seed)) for c in configs]
    trained = [0] * len(configs)
    alive = list(range(len(configs)))
    table: list[Trial] = []
    rung = 0
    while True:
        budget = iterations * (eta**rung if method == "halving" else 1)
        results = []
        for i in alive:
            learner, sample_batch = runs[i]
            value = _train_and_score(learner, sample_batch, budget - trained[i], metric, val_tasks)
            trained[i] = budget
            results.append(Trial(i, configs[i], rung, budget, value))
        table += results
        if method == "random" or len(alive) == 1:
            break
        keep = max(1, len(alive) // eta)
        alive = [t.index for t in sorted(results, key=rank_key)[:keep]]
        rung += 1
    final = sorted(table[-len(results) :], key=rank_key)[0]
    return TuningResult(final.config, final.value, table)


def _train_and_score(
    learner: Any,
    sample_batch: Callable[[], Sequence[Task]],
    steps: int,
    metric: Evaluate,
    val_tasks: Sequence[Task],
) -> float:
    for _ in range(steps):
        stats = learner.meta_update(sample_batch())
        loss = stats.query_loss_after if hasattr(stats, "query_loss_after") else stats.loss
        if not math.isfinite(loss):
            return math.nan  # diverged: ranked last, not an error
    value = _as_float(metric(learner, val_tasks))
    return value if math.isfinite(value) else math.nan
