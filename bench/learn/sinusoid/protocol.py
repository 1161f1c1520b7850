"""The sinusoid protocol: its sizes, the learners and their settings, the reference figures
(see :mod:`bench.learn.sinusoid`).

Examples
--------
>>> make_net().hidden, LEARNERS[-1]
((40, 40), 'pretrained')
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from adaptd.adapters.network import PolicyNet

from .pretrained import JointRegression

__all__ = [
    "FINE_TUNE_LRS",
    "LEARNERS",
    "PROTOCOL",
    "QUICK",
    "REFERENCES",
    "REPTILE",
    "cache_path",
    "make_learner",
    "make_net",
]

PROTOCOL: dict[str, Any] = {
    "hidden": [40, 40],
    "activation": "relu",
    "meta_batch": 25,
    "meta_lr": 1e-3,
    "inner_lr": 0.01,
    "train_inner_steps": 1,
    "shots": [5, 10, 20],
    "iterations": 70_000,
    "eval_every": 2000,
    "patience": 10,
    "val_tasks": 200,
    "test_tasks": 600,
    "query_points": 100,
    "eval_steps": [0, 1, 10],
    "val_seed": 2_000_003,
    "test_seed": 1_000_003,
}
QUICK: dict[str, Any] = {
    "shots": [5],
    "iterations": 6,
    "eval_every": 3,
    "val_tasks": 8,
    "test_tasks": 10,
    "query_points": 20,
}
REPTILE: dict[str, Any] = {
    "inner_lr": 0.02,
    "inner_steps": 5,
    "outer_lr": 0.1,
    "iteration_share": 0.32,
}
"""The Reptile code's sinusoid settings; ``iteration_share`` of the protocol's iterations (an
iteration costs it about 3x MAML's: 5 steps on 2K points, and a support-only adaptation for
its statistics)."""
LEARNERS = ("maml", "fomaml", "reptile", "metasgd", "anil", "pretrained")
FINE_TUNE_LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
REFERENCES: dict[tuple[str, int], dict[int, float]] = {
    ("maml", 5): {1: 0.50, 10: 0.28},
    ("maml", 10): {1: 0.31, 10: 0.14},  # 0.11 to 0.14 reported: the weaker end is the bar
}
"""Reference MSE of a careful reimplementation (issue 3), by (learner, K) and steps."""
_CLASSES = {"maml": MAML, "fomaml": FOMAML, "metasgd": MetaSGD, "anil": ANIL}


def make_net() -> PolicyNet:
    """The protocol's network, ``PolicyNet(1, (40, 40), activation="relu")``."""
    return PolicyNet(1, tuple(PROTOCOL["hidden"]), activation=PROTOCOL["activation"])


def make_learner(name: str, seed: int) -> Any:
    """The learner ``name`` (one of :data:`LEARNERS`) with the protocol's settings."""
    net = make_net()
    steps, inner, outer = PROTOCOL["train_inner_steps"], PROTOCOL["inner_lr"], PROTOCOL["meta_lr"]
    if name == "reptile":
        return Reptile(
            net,
            inner_steps=REPTILE["inner_steps"],
            inner_lr=REPTILE["inner_lr"],
            meta_lr=REPTILE["outer_lr"],
            seed=seed,
        )
    if name == "pretrained":
        return JointRegression(net, inner_steps=steps, inner_lr=inner, meta_lr=outer, seed=seed)
    if name not in _CLASSES:
        raise ValueError(f"name must be one of {LEARNERS}, got {name!r}")
    return _CLASSES[name](net, inner_steps=steps, inner_lr=inner, meta_lr=outer, seed=seed)


def cache_path(seed: int) -> Path:
    """Where a full run keeps its MAML initial weights per K (read by ``efficiency``)."""
    return Path(tempfile.gettempdir()) / "adaptd-bench" / f"sinusoid-maml-seed{seed}.pt"
