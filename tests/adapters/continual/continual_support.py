"""Helpers shared by the continual-learning strategy tests: the small classifier and the two
conflicting tasks the memory-based strategies (replay, core sets, generative replay, GEM,
A-GEM) are checked on, the comparison with plain fine-tuning, the state hand-over between two
instances, and the per-task linear teachers of the architecture tests.

Imported by name (``from continual_support import ...``): pytest puts this folder on
``sys.path`` as it has no ``__init__.py``, as for ``tests/daemon_support.py``.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
import torch

from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask, Strategy
from adaptd.adapters.continual.training import TrainConfig, run_sequence
from adaptd.adapters.network import PolicyNet, init_params

SEQUENCE_CONFIG = TrainConfig(epochs=20, lr=0.1, batch_size=16)
"""Training of the runs that compare a strategy with plain fine-tuning."""


def classifier(seed: int = 0, out_dim: int = 2) -> ContinualModel:
    net = PolicyNet(4, (32,), out_dim=out_dim, activation="relu")
    return ContinualModel(net, init_params(net, seed=seed))


def conflicting_tasks(seed: int = 0) -> list[ContinualTask]:
    """Two tasks with opposite rules for the sign of x0, told apart by the offset of x1: a
    network can solve both, but fitting the second overwrites the first."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for i, offset in enumerate((1.0, -1.0)):
        x = torch.randn(200, 4, generator=g)
        x[:, 1] = 0.5 * x[:, 1] + offset
        y = (x[:, 0] > 0).long() if i == 0 else (x[:, 0] < 0).long()
        tasks.append(ContinualTask(i, x[:150], y[:150], x[150:], y[150:]))
    return tasks


@functools.cache
def fine_tuning_accuracy() -> np.ndarray:
    """Plain fine-tuning's accuracy matrix on :func:`conflicting_tasks`: computed once (by the
    first test that needs it, so under the tests' single torch thread), read-only."""
    values = run_sequence(classifier(), Strategy(), conflicting_tasks(), SEQUENCE_CONFIG)
    values.matrix.values.setflags(write=False)
    return values.matrix.values


def assert_keeps_the_first_task(strategy: Strategy, *, learned: float) -> None:
    """``strategy`` trained on :func:`conflicting_tasks` keeps the first task's accuracy far
    above plain fine-tuning's, which forgets it, and still learns the second one to more than
    ``learned``."""
    naive = fine_tuning_accuracy()
    assert naive[0, 0] > 0.9 and naive[1, 0] < 0.3  # the tasks do interfere
    values = run_sequence(classifier(), strategy, conflicting_tasks(), SEQUENCE_CONFIG)
    assert values.matrix.values[1, 0] > naive[1, 0] + 0.3
    assert values.matrix.values[1, 1] > learned


def save_and_load(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` through ``torch.save`` and ``torch.load(weights_only=True)``, as a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def hand_over(strategy: Strategy, twin: Strategy, config: TrainConfig) -> ContinualModel:
    """Trains ``strategy`` on the first of :func:`conflicting_tasks` from :func:`classifier`,
    loads its saved state into ``twin`` and returns the trained model."""
    model = classifier()
    run_sequence(model, strategy, conflicting_tasks()[:1], config)
    twin.load_state_dict(save_and_load(strategy.state_dict()))
    return model


def assert_continues_identically(
    model: ContinualModel, strategy: Strategy, twin: Strategy, config: TrainConfig
) -> None:
    """After :func:`hand_over`, training the second task with ``strategy`` and with ``twin``
    from the same weights ends at bit-identical weights."""
    twin_model = ContinualModel(model.net, dict(model.params))
    run_sequence(model, strategy, conflicting_tasks()[1:], config)
    run_sequence(twin_model, twin, conflicting_tasks()[1:], config)
    for k in model.params:
        assert torch.equal(model.params[k], twin_model.params[k]), k


def teacher_task(i: int, seed: int, n: int = 48) -> ContinualTask:
    """Task ``i``, labelled by a random linear teacher drawn from ``seed``: 6 inputs, 4
    classes, half the examples for training. Tasks of different seeds conflict."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(6, 4, generator=g)
    x = torch.randn(n, 6, generator=g)
    y = (x @ teacher).argmax(-1)
    return ContinualTask(i, x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :])
