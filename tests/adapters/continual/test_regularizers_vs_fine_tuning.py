"""The regularizers (EWC, online EWC, SI, MAS, LwF) each keep an earlier task better than plain
fine-tuning on two tasks whose labels come from different features of the same inputs."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
import torch

from adaptd.adapters.continual.ewc import EWC
from adaptd.adapters.continual.lwf import LearningWithoutForgetting
from adaptd.adapters.continual.mas import MemoryAwareSynapses
from adaptd.adapters.continual.online_ewc import OnlineEWC
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask, Strategy
from adaptd.adapters.continual.si import SynapticIntelligence
from adaptd.adapters.continual.training import TrainConfig, run_sequence
from adaptd.adapters.network import PolicyNet, init_params

STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "naive": Strategy,
    "ewc": lambda: EWC(lam=100.0),
    "online_ewc": lambda: OnlineEWC(lam=100.0),
    "si": lambda: SynapticIntelligence(c=1.0),
    "mas": lambda: MemoryAwareSynapses(lam=1.0),
    "lwf": lambda: LearningWithoutForgetting(alpha=3.0),
}
"""Plain fine-tuning, and each regularizer with the strength its comparison uses."""


def overwriting_tasks(seed: int = 0, n: int = 256) -> list[ContinualTask]:
    """Same inputs, labels from different features: learning task 1 overwrites task 0."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for i in range(2):
        x = torch.randn(2 * n, 4, generator=g)
        y = (x[:, i] > 0).long()
        tasks.append(ContinualTask(i, x[:n], y[:n], x[n:], y[n:]))
    return tasks


@functools.cache
def accuracy(name: str) -> np.ndarray:
    """The accuracy matrix of ``STRATEGIES[name]`` on :func:`overwriting_tasks`, read-only:
    cached, as plain fine-tuning's serves every test (it is computed by the first one, so
    under the tests' single torch thread)."""
    net = PolicyNet(4, (16,), out_dim=2)
    model = ContinualModel(net, init_params(net, seed=0))
    config = TrainConfig(epochs=5, lr=0.1)
    values = run_sequence(model, STRATEGIES[name](), overwriting_tasks(), config).matrix.values
    values.setflags(write=False)
    return values


@pytest.mark.parametrize("name", [name for name in STRATEGIES if name != "naive"])
def test_keeps_the_first_task_better_than_fine_tuning(name: str) -> None:
    naive, values = accuracy("naive"), accuracy(name)
    assert naive[0, 0] > 0.9 and values[0, 0] > 0.9
    assert values[1, 0] > naive[1, 0] + 0.15
