"""One strategy through one task sequence, and joint training: the records every section keeps.

:class:`Setup` fixes a setting's network and training (one fixed network per setting, as the
benchmarks require). :func:`run_strategy` trains a fresh model through a sequence under one
strategy with :func:`adaptd.adapters.continual.run_sequence` and returns a JSON-able record:
the accuracy-matrix metrics (:meth:`AccuracyMatrix.summary`: ACC, BWT, FWT, forgetting,
retention over the earliest 10 % and all tasks), average accuracy after every evaluated row
(``curve``), mean retention per tenth of the sequence, the largest ``memory_bytes`` over the
run, model parameters, training seconds per task (mean, first and last tenth, so growing costs
show), evaluation seconds, the earliest tasks' scores (untrained, just after learning them,
at the end) and whether the design's target is met: mean retention of the earliest 10 % of
tasks above 95 %, *and* those tasks learned in the first place (their score just after
training at least half-way from the untrained score to a perfect one; a model that learns
nothing keeps "everything" it learned). A strategy that raises is recorded with its error and
does not stop the others.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual import ContinualTask
>>> g = torch.Generator().manual_seed(0)
>>> def task(i):
...     x = torch.randn(60, 4, generator=g)
...     y = (x[:, i] > 0).long()
...     return ContinualTask(i, x[:40], y[:40], x[40:], y[40:])
>>> tasks = [task(0), task(1)]
>>> setup = Setup(in_dim=4, out_dim=2, hidden=(8,), epochs=3, lr=0.5)
>>> record = run_strategy("naive", {}, tasks, setup)
>>> record["tasks"], sorted(record["metrics"])[:2], record["target_met"]
(2, ['average_accuracy', 'backward_transfer'], False)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from adaptd.adapters.continual import (
    ContinualModel,
    ContinualTask,
    TrainConfig,
    run_sequence,
    strategies,
)
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Loss

__all__ = ["LEARNED", "TARGET", "Setup", "run_strategy"]

TARGET = 0.95
"""The design's retention target: mean retention of the earliest 10 % of tasks."""
LEARNED = 0.5
"""For the target to count, the earliest tasks' score just after training must have covered
this fraction of the way from their untrained score to a perfect one."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setup:
    """The network and training of one setting (every strategy and joint training share it)."""

    in_dim: int
    out_dim: int
    hidden: tuple[int, ...] = (100, 100)
    activation: str = "relu"
    loss: Loss = "cross_entropy"
    epochs: int = 1
    """Passes over each task's training set."""
    batch_size: int = 10
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    seed: int = 0
    """Seeds the initial weights and the batch order."""
    output_scale: float = 1.0
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def from_table(
        cls,
        table: Mapping[str, Any],
        *,
        in_dim: int,
        out_dim: int,
        seed: int,
        loss: Loss = "cross_entropy",
    ) -> Setup:
        """The setup a section's JSON-able ``setup`` table describes (``hidden`` a list,
        ``output_scale`` optional), for a data set of ``in_dim`` inputs and ``out_dim`` outputs.

        >>> table = {"hidden": [8], "activation": "relu", "epochs": 1, "batch_size": 4,
        ...          "lr": 0.1, "optimizer": "sgd"}
        >>> Setup.from_table(table, in_dim=3, out_dim=2, seed=0).hidden
        (8,)
        """
        return cls(
            in_dim=in_dim,
            out_dim=out_dim,
            hidden=tuple(table["hidden"]),
            activation=table["activation"],
            loss=loss,
            epochs=table["epochs"],
            batch_size=table["batch_size"],
            lr=table["lr"],
            optimizer=table["optimizer"],
            seed=seed,
            output_scale=table.get("output_scale", 1.0),
        )

    def model(self) -> ContinualModel:
        """A fresh model (the same initial weights for every strategy)."""
        net = PolicyNet(
            self.in_dim,
            tuple(self.hidden),
            activation=self.activation,
            out_dim=self.out_dim,
            output_scale=self.output_scale,
        )
        return ContinualModel(net, init_params(net, self.seed), loss=self.loss)

    def train_config(self) -> TrainConfig:
        """The per-task training of :func:`run_sequence`."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            seed=self.seed,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        out["notes"] = list(self.notes)
        return out


def run_strategy(
    name: str,
    options: Mapping[str, Any],
    tasks: Sequence[ContinualTask],
    setup: Setup,
    *,
    eval_every: int = 1,
    earliest: float = 0.1,
    keep_matrix: bool = False,
) -> dict[str, Any]:
    """Train a fresh ``setup.model()`` through ``tasks`` under ``strategies()[name](**options)``;
    the record described in the module docstring (``{"error": ...}`` when it raised).
    ``keep_matrix`` adds ``R`` itself (``"matrix"``, rows of floats, None where not
    evaluated) and the untrained scores (``"baseline"``)."""
    record: dict[str, Any] = {"strategy": name, "options": dict(options), "tasks": len(tasks)}
    registered = strategies()
    if name not in registered:
        raise ValueError(f"name must be a registered strategy {sorted(registered)}, got {name!r}")
    start = time.perf_counter()
    try:
        strategy = registered[name](**options)
        model = setup.model()
        result = run_sequence(model, strategy, tasks, setup.train_config(), eval_every=eval_every)
    except Exception as error:  # one broken strategy must not sink the others' results
        log.exception("strategy %s failed on %d tasks", name, len(tasks))
        return {**record, "error": f"{type(error).__name__}: {error}"}
    total = time.perf_counter() - start
    matrix = result.matrix
    train = np.array([s.seconds for s in result.tasks])
    tenth = max(1, len(train) // 10)
    rows = [i for i in range(len(tasks)) if np.isfinite(matrix.values[i, : i + 1]).all()]
    ratios = np.array(matrix.retention())
    metrics = matrix.summary()
    metrics["retention"] = matrix.retention_summary(earliest)
    early = _earliest(matrix.values, matrix.baseline, metrics["retention"]["earliest"]["tasks"])
    head = metrics["retention"]["earliest"]["mean"]
    learned = early["after"] - early["untrained"] >= LEARNED * (1.0 - early["untrained"])
    return {
        **record,
        "metrics": metrics,
        "earliest": early,
        "target_met": bool(
            matrix.higher_is_better and math.isfinite(head) and head > TARGET and learned
        ),
        "curve": {
            "tasks": [i + 1 for i in rows],
            "average_accuracy": [_r(matrix.average_accuracy(i)) for i in rows],
        },
        "retention_by_tenth": [_r(_nanmean(part)) for part in _tenths(ratios)],
        "diagonal_mean": _r(_nanmean(np.diagonal(matrix.values))),
        "memory_bytes": _growth(result.memory_bytes, tenth),
        "parameters": _growth(result.parameters, tenth),
        "seconds_per_task": {
            "mean": _r(float(train.mean()), 5),
            "first_tenth": _r(float(train[:tenth].mean()), 5),
            "last_tenth": _r(float(train[-tenth:].mean()), 5),
        },
        "train_seconds": _r(float(train.sum()), 3),
        "eval_seconds": _r(total - float(train.sum()), 3),
        "seconds": _r(total, 3),
        **(
            {"matrix": _rows(matrix.values), "baseline": _rows(matrix.baseline[None])[0]}
            if keep_matrix
            else {}
        ),
    }


def _growth(values: Sequence[int], tenth: int) -> dict[str, int]:
    """Largest, after the first tenth of the tasks, and final: shows whether it is bounded."""
    return {
        "max": int(max(values)),
        "first_tenth": int(values[tenth - 1]),
        "final": int(values[-1]),
    }


def _earliest(values: np.ndarray, baseline: np.ndarray, head: int) -> dict[str, float]:
    """Mean scores of the first ``head`` tasks: untrained, just after training, at the end."""
    return {
        "untrained": _r(_nanmean(baseline[:head])),
        "after": _r(_nanmean(np.diagonal(values)[:head])),
        "final": _r(_nanmean(values[-1, :head])),
    }


def _rows(values: np.ndarray) -> list[list[float | None]]:
    return [[_r(float(v)) if np.isfinite(v) else None for v in row] for row in values]


def _nanmean(values: np.ndarray) -> float:
    kept = np.asarray(values, dtype=float)
    kept = kept[np.isfinite(kept)]
    return float(kept.mean()) if kept.size else math.nan


def _tenths(values: np.ndarray) -> list[np.ndarray]:
    parts = np.array_split(np.asarray(values, dtype=float), min(10, len(values)))
    return [p for p in parts if p.size]


def _r(value: float, digits: int = 4) -> float:
    return round(value, digits) if math.isfinite(value) else value
