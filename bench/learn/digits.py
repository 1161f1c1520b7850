"""Few-shot classification benchmark: held-out classes of scikit-learn's digits and rotations.

The data are :func:`adaptd.adapters.tasks.rotated_digits` (8x8 digits and their 90°, 180° and
270° rotations as new classes, 40 classes, no download). :func:`split_classes` with the run's
seed cuts the classes into disjoint meta-train (24), meta-validation (6) and meta-test (10)
sets; the classes of each set are in the result (``"split"``). Episodes are 5-way with 15
queries a class, 1-shot and 5-shot; a model is meta-trained separately for each K (as Snell et
al. and Vinyals et al. do), on batches of episodes from the meta-train classes, validated on
fixed episodes of the meta-validation classes every ``eval_every`` updates, stopped when the
validation accuracy has not improved for ``patience`` evaluations (or at ``max_updates``), and
reset to its best validation state. It is then tested on ``test_episodes`` episodes of the
meta-test classes, the same episodes for every model (paired comparisons); the accuracy is the
mean over episodes of the query accuracy, with its 95 % confidence half-width.

Models (:data:`MODELS`): the non-learned baselines ``nearest_mean`` (ProtoNet with the identity
embedding: nearest class mean on raw pixels) and ``nearest_neighbour`` (1-NN on raw pixels,
Euclidean), then ``protonet``, ``matching`` (cosine attention), ``matching_fce`` (with
full-context support embeddings), ``relation`` (MLP relation module, MSE to one-hot) on the
same MLP embedding with meta-batch normalisation, and ``maml`` (second-order MAML on
``PolicyNet(64, hidden, out_dim=5, norm="batch")``; its batch normalisation is transductive, as
in the MAML paper: the query set is normalised with its own statistics).

Outside quick mode the training runs are spread over a pool of spawned worker processes, each
with one torch thread (:func:`~.harness.parallel.run_parallel`). The helpers here (``train``,
``test``, ``nearest_neighbour_accuracies``) also serve :mod:`.regimes`.

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
    rotated_digits,
    split_classes,
)

from .harness.parallel import run_parallel

__all__ = [
    "BASELINES",
    "MODELS",
    "PROTOCOL",
    "make_learner",
    "nearest_neighbour_accuracies",
    "run",
    "summary",
    "test",
    "train",
    "verdict",
]

BASELINES = ("nearest_mean", "nearest_neighbour")
"""Models that learn nothing: they are tested only."""
MODELS = (*BASELINES, "protonet", "matching", "matching_fce", "relation", "maml")
LABELS = {
    "nearest_mean": "nearest class mean, raw pixels",
    "nearest_neighbour": "1-NN, raw pixels",
    "identity_protonet": "ProtoNet, identity embedding (= nearest class mean)",
    "protonet": "ProtoNet",
    "matching": "matching network",
    "matching_fce": "matching network + FCE",
    "relation": "relation network",
    "maml": "MAML (second order)",
}

PROTOCOL: dict[str, Any] = {
    "classes": {"train": 24, "val": 6, "test": 10},
    "n_way": 5,
    "train_way": 5,
    "shots": [1, 5],
    "n_query": 15,
    "meta_batch": 16,
    "val_episodes": 300,
    "test_episodes": 600,
    "max_updates": 3000,
    "eval_every": 100,
    "patience": 6,
    "hidden": [64, 64],
    "channels": [],
    "batch_norm": True,
    "lr": 1e-3,
    "matching_scale": 10.0,
    "maml": {"inner_steps": 5, "inner_lr": 0.4, "meta_lr": 1e-3},
}
QUICK: dict[str, Any] = {
    "val_episodes": 8,
    "test_episodes": 20,
    "max_updates": 4,
    "eval_every": 2,
    "meta_batch": 2,
    "hidden": [16],
    "maml": {"inner_steps": 1, "inner_lr": 0.4, "meta_lr": 1e-3},
}
WORKERS = 2


def make_learner(model: str, in_dim: int, config: dict[str, Any], seed: int) -> Any:
    """A fresh learner of ``model`` (one of :data:`MODELS` but the 1-NN) for ``in_dim`` inputs."""
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
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


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


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every model at 1 and 5 shots (module docstring); ``quick`` shrinks it to a smoke test."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    splits = _split(rotated_digits()[1], config, seed)
    # Slow jobs first, so the pool does not end waiting on one long run.
    order = ("maml", "matching_fce", "relation", "matching", "protonet", *BASELINES)
    jobs = [
        {"model": model, "shots": shots, "config": config, "seed": seed}
        for model in order
        for shots in config["shots"]
    ]
    results = run_parallel(_digits_job, jobs, 1 if quick else WORKERS)
    table: dict[str, dict[str, Any]] = {str(k): {} for k in config["shots"]}
    for job, result in zip(jobs, results, strict=True):
        table[str(job["shots"])][job["model"]] = result
    return {
        "protocol": config,
        "split": {
            **dict(zip(("train", "val", "test"), map(list, splits), strict=True)),
            "seed": seed,
        },
        "training": "one model per K (1-shot and 5-shot trained separately)",
        "results": {k: {m: table[k][m] for m in MODELS} for k in table},
    }


def summary(result: dict[str, Any]) -> str:
    """A markdown table of ``run()`` output."""
    p = result["protocol"]
    split = result["split"]
    shots = list(result["results"])
    lines = [
        f"scikit-learn digits with 90°/180°/270° rotations as new classes (40). Disjoint class "
        f"split (seed {split['seed']}): meta-train {len(split['train'])}, meta-val "
        f"{len(split['val'])}, meta-test {split['test']}. {p['n_way']}-way, {p['n_query']} "
        f"queries a class, {p['test_episodes']} test episodes (the same for every model), mean "
        f"accuracy ± 95 % CI. Learned models: MLP {tuple(p['hidden'])} embedding with "
        f"meta-batch norm, Adam {p['lr']}, meta-batch {p['meta_batch']}, trained per K, early "
        f"stopping on {p['val_episodes']} meta-val episodes every {p['eval_every']} updates "
        f"(patience {p['patience']}, at most {p['max_updates']}). MAML: "
        f"{p['maml']['inner_steps']} inner steps of {p['maml']['inner_lr']}, Adam "
        f"{p['maml']['meta_lr']}, transductive batch norm.",
        "",
        "| model | "
        + " | ".join(f"{p['n_way']}-way {k}-shot | updates (best)" for k in shots)
        + " |",
        "|---" + "|---:|---:" * len(shots) + "|",
    ]
    for model in MODELS:
        cells = []
        for k in shots:
            r = result["results"][k][model]
            cells.append(f"{r['accuracy']:.3f} ± {r['ci95']:.3f}")
            cells.append("-" if "updates" not in r else f"{r['updates']} ({r['best_update']})")
        lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + " |")
    lines += ["", verdict(result["results"], LABELS, unit="shot")]
    return "\n".join(lines)


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


def _digits_job(job: dict[str, Any]) -> dict[str, Any]:
    config, shots, seed = job["config"], job["shots"], job["seed"]
    x, y = rotated_digits()
    train_classes, val_classes, test_classes = _split(y, config, seed)

    def sampler(classes: Sequence[int], offset: int, way: int | None = None) -> EpisodeSampler:
        return EpisodeSampler(
            x,
            y,
            classes,
            n_way=way or config["n_way"],
            k_shot=shots,
            n_query=config["n_query"],
            seed=seed * 1000 + 10 * shots + offset,
        )

    val_tasks = sampler(val_classes, 1).sample(config["val_episodes"])
    test_tasks = sampler(test_classes, 2).sample(config["test_episodes"])
    way = config["n_way"] if job["model"] == "maml" else config["train_way"]
    learner, record = train(job["model"], sampler(train_classes, 0, way), val_tasks, config, seed)
    return {**test(learner, test_tasks), **record}


def _split(y: Any, config: dict[str, Any], seed: int) -> tuple[tuple[int, ...], ...]:
    counts = config["classes"]
    return split_classes(y, counts["train"], counts["val"], counts["test"], seed=seed)


def _validation_accuracy(learner: Any, tasks: Sequence[Task]) -> float:
    if hasattr(learner, "evaluate"):
        return learner.evaluate(tasks).accuracy  # one batched pass over the episodes
    return evaluate_classifier(learner, tasks).mean
