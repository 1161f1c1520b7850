"""The policy section's data and learners: the daemon's examples of river's real series, tasks
cut from them and split by time, and the daemon's learners from its own settings (see
:mod:`bench.learn.policy`).

Examples
--------
>>> SPLIT
(0.6, 0.75)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task

__all__ = [
    "ALGORITHMS",
    "SPLIT",
    "daemon_settings",
    "policy_learner",
    "policy_net",
    "series_examples",
    "series_tasks",
    "splits",
    "tuned_overrides",
]

ALGORITHMS = ("maml", "fomaml", "reptile", "metasgd", "anil")
SPLIT = (0.60, 0.75)  # train | validation | test, by time within each series


@functools.cache
def series_examples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one river series through the daemon's features and delayed labels (computed
    once per process: every learner and the tuner share these arrays: never modify them)."""
    from adaptd.adapters.tasks import series as datasets
    from adaptd.daemon.config.settings import FeatureSettings
    from adaptd.daemon.core.features import FeatureExtractor
    from adaptd.daemon.core.labels import DelayedLabeler
    from adaptd.daemon.core.tasks.returns import ReturnTask

    settings = FeatureSettings()
    series = datasets.load(name)
    features = FeatureExtractor(settings)
    task = ReturnTask(horizon=settings.label_horizon, clip=settings.label_clip)
    labeler = DelayedLabeler(task.label_rule())
    xs, ys = [], []
    for i, price in enumerate(series.price):
        x = features.update(float(price))
        example = labeler.push(i, features, x, i, i)
        if example is not None:
            xs.append(example.x)
            ys.append(example.y)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32)


def series_tasks(
    x: np.ndarray, y: np.ndarray, *, shots: int, query: int, stride: int
) -> list[Task]:
    """Tasks of ``shots`` consecutive examples, the last ``query`` held out, every ``stride``."""
    tasks = []
    for start in range(0, len(x) - shots + 1, stride):
        xt = torch.from_numpy(x[start : start + shots])
        yt = torch.from_numpy(y[start : start + shots])
        tasks.append(Task(xt[:-query], yt[:-query], xt[-query:], yt[-query:]))
    return tasks


def splits(quick: bool) -> tuple[list[Task], list[Task], list[Task]]:
    """Training, validation and test tasks of all three series, by time (:data:`SPLIT`)."""
    from adaptd.daemon.config.settings import AdaptationSettings

    s = AdaptationSettings()
    train: list[Task] = []
    val: list[Task] = []
    test: list[Task] = []
    for name in ("bitcoin", "brent", "apple"):
        x, y = series_examples(name)
        a, b = (int(len(x) * f) for f in SPLIT)
        # Training tasks overlap (stride 4) for more meta-training data; validation and test
        # tasks do not, so their errors are independent draws.
        train += series_tasks(x[:a], y[:a], shots=s.shots, query=s.query_size, stride=4)
        val += series_tasks(x[a:b], y[a:b], shots=s.shots, query=s.query_size, stride=s.shots)
        test += series_tasks(x[b:], y[b:], shots=s.shots, query=s.query_size, stride=s.shots)
    if quick:
        return train[:64], val[:16], test[:16]
    return train, val, test


def daemon_settings(algorithm: str, overrides: dict[str, Any] | None = None) -> Any:
    """The daemon's ``AdaptationSettings`` for ``algorithm``, with ``overrides``."""
    from adaptd.daemon.config.settings import AdaptationSettings

    return AdaptationSettings(meta_algorithm=algorithm, **(overrides or {}))


def tuned_overrides(
    algorithm: str, inner_lr: float, inner_steps: int, meta_lr: float
) -> dict[str, Any]:
    """A tuned configuration as daemon settings (Reptile's outer step is ``meta_lr``)."""
    outer = "meta_lr" if algorithm == "reptile" else "adam_lr"
    return {"inner_lr": inner_lr, "inner_steps": inner_steps, outer: meta_lr}


def policy_net() -> PolicyNet:
    """The daemon's policy network for its own features and the return task's head."""
    from adaptd.daemon.config.settings import AdaptationSettings, FeatureSettings
    from adaptd.daemon.core.features import feature_names
    from adaptd.daemon.core.tasks.returns import ReturnTask
    from adaptd.daemon.learner.messages import ACTIVATION

    return PolicyNet(
        len(feature_names(FeatureSettings())),
        AdaptationSettings().hidden,
        activation=ACTIVATION,
        output_scale=ReturnTask.head.output_scale,
    )


def policy_learner(algorithm: str, net: PolicyNet, overrides: dict[str, Any] | None = None) -> Any:
    """The daemon's meta-learner for ``algorithm`` on ``net``, with ``overrides``."""
    from adaptd.daemon.learner.algorithms import make_learner

    return make_learner(daemon_settings(algorithm, overrides), net)
