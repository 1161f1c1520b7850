"""Few-shot classifiers on episodes, shared by the ``digits`` and ``regimes`` sections: build
one, meta-train it with early stopping on validation episodes, test it, and say which learned
models beat the non-learned baselines.

The baselines (:data:`BASELINES`) learn nothing: ``nearest_mean`` is ProtoNet with the
identity embedding (the nearest class mean on raw features), ``nearest_neighbour`` the
1-nearest-neighbour rule on raw features (Euclidean). The learned models (``protonet``,
``matching``, ``matching_fce``, ``relation``) share an MLP embedding, with meta-batch
normalisation when the configuration says so; ``maml`` is second-order MAML on
``PolicyNet(in, hidden, out_dim=n_way, norm="batch")``.

Examples
--------
>>> import torch
>>> from adaptd.adapters.protocol import Task
>>> x = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 0.0], [3.9, 0.0]])
>>> task = Task(x[:2], torch.tensor([0, 1]), x[2:], torch.tensor([0, 1]))
>>> nearest_neighbour_accuracies([task])
[1.0]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from adaptd.adapters.fewshot import Embedding, MatchingNet, ProtoNet, RelationNet
from adaptd.adapters.meta import MAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import (
    EarlyStopping,
    EpisodeSampler,
    Estimate,
    evaluate_classifier,
    meta_train,
)

__all__ = [
    "BASELINES",
    "LEARNED",
    "make_learner",
    "nearest_neighbour_accuracies",
    "test",
    "train",
    "verdict",
]

BASELINES = ("nearest_mean", "nearest_neighbour")
"""Models that learn nothing: they are tested only."""
LEARNED = ("protonet", "matching", "matching_fce", "relation", "maml")
"""Models :func:`make_learner` builds and :func:`train` meta-trains."""


def make_learner(model: str, in_dim: int, config: dict[str, Any], seed: int) -> Any:
    """A fresh learner of ``model`` (a learned model or ``nearest_mean``) for ``in_dim`` inputs."""
    hidden = tuple(config["hidden"])
    lr = config["lr"]
    if model == "nearest_mean":
        return ProtoNet()
    if model == "maml":
        net = PolicyNet(in_dim, hidden, activation="relu", out_dim=config["n_way"], norm="batch")
        return MAML(net, **config["maml"], loss="cross_entropy", seed=seed)
    channels = tuple(config["channels"])
    side = round(in_dim**0.5)
    embedding = Embedding(
        in_dim,
        hidden,
        channels=channels,
        image_shape=(side, side) if channels else None,
        batch_norm=config["batch_norm"],
        seed=seed,
    )
    if model == "protonet":
        return ProtoNet(embedding, lr=lr, seed=seed)
    if model in ("matching", "matching_fce"):
        fce = model == "matching_fce"
        return MatchingNet(embedding, fce=fce, scale=config["matching_scale"], lr=lr, seed=seed)
    if model == "relation":
        return RelationNet(embedding, lr=lr, seed=seed)
    raise ValueError(f"model must be one of {(*BASELINES, *LEARNED)}, got {model!r}")


def nearest_neighbour_accuracies(tasks: Sequence[Task]) -> list[float]:
    """Query accuracy per episode of the 1-nearest-neighbour rule (Euclidean, raw features)."""
    out = []
    for task in tasks:
        # Squared differences, as ProtoNet's distances (torch.cdist's matrix-product path
        # rounds differently, which moves near-ties).
        distances = ((task.query_x.unsqueeze(1) - task.support_x.unsqueeze(0)) ** 2).sum(-1)
        nearest = distances.argmin(dim=1)
        out.append(float((task.support_y[nearest] == task.query_y).double().mean()))
    return out


def train(
    model: str,
    sampler: EpisodeSampler,
    val_tasks: Sequence[Task],
    config: dict[str, Any],
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """``(learner, record)``: ``model`` meta-trained with early stopping on ``val_tasks`` and
    reset to its best validation state, and what training did (JSON-able). The baselines
    learn nothing (``record`` is empty; the 1-NN has no learner, None)."""
    if model == "nearest_neighbour":
        return None, {}
    learner = make_learner(model, int(val_tasks[0].support_x.shape[1]), config, seed)
    if model in BASELINES:
        return learner, {}
    history = meta_train(
        learner,
        lambda: sampler.sample(config["meta_batch"]),
        val_tasks,
        iterations=config["max_updates"],
        eval_every=config["eval_every"],
        evaluate=_validation_accuracy,
        stopper=EarlyStopping(patience=config["patience"], mode="max"),
    )
    return learner, {
        "updates": history.iterations,
        "best_update": history.best_step,
        "val_accuracy": history.best_value,
        "val_curve": dict(zip(map(str, history.val_steps), history.val_values, strict=True)),
        "stopped_early": history.stopped_early,
        "train_seconds": history.seconds,
    }


def test(learner: Any, tasks: Sequence[Task]) -> dict[str, Any]:
    """Mean query accuracy over ``tasks`` with its 95 % half-width; ``learner`` None is the
    1-NN rule on raw features."""
    start = time.perf_counter()
    if learner is None:
        estimate = Estimate.of(nearest_neighbour_accuracies(tasks))
    else:
        estimate = evaluate_classifier(learner, tasks)
    return {
        "accuracy": estimate.mean,
        "ci95": estimate.half_width,
        "episodes": estimate.n,
        "test_seconds": time.perf_counter() - start,
    }


def verdict(results: dict[str, dict[str, Any]], labels: dict[str, str], *, unit: str) -> str:
    """Per setting of ``results`` (``{setting: {model: {"accuracy", "ci95"}}}``), the learned
    models whose accuracy beats the better baseline beyond both 95 % intervals."""
    out = []
    for setting, table in results.items():
        base = max(BASELINES, key=lambda m: table[m]["accuracy"])
        floor = table[base]["accuracy"] + table[base]["ci95"]
        better = [
            labels[m]
            for m in table
            if m not in BASELINES and table[m]["accuracy"] - table[m]["ci95"] > floor
        ]
        found = ", ".join(better) if better else "no learned model"
        verb = "beat" if len(better) > 1 else "beats"
        out.append(
            f"{setting}-{unit}: {found} {verb} the better baseline ({labels[base]}) beyond the CIs."
        )
    return " ".join(out)


def _validation_accuracy(learner: Any, tasks: Sequence[Task]) -> float:
    if hasattr(learner, "evaluate"):
        return learner.evaluate(tasks).accuracy  # one batched pass over the episodes
    return evaluate_classifier(learner, tasks).mean
