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
with one torch thread (:func:`~.harness.parallel.run_parallel`). The models are built, trained
and tested by :mod:`.classifiers`, which also serves :mod:`.regimes`.

Examples
--------
>>> MODELS[:2] == BASELINES
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptd.adapters.tasks import EpisodeSampler, rotated_digits, split_classes

from .classifiers import BASELINES, LEARNED, test, train, verdict
from .harness.parallel import run_parallel

__all__ = ["BASELINES", "MODELS", "PROTOCOL", "QUICK", "run", "summary"]

MODELS = (*BASELINES, *LEARNED)
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
