"""Few-shot market-regime identification on real prices, against nearest-neighbour baselines.

Data: :func:`adaptd.adapters.tasks.regime_dataset` with its defaults (river's Bitcoin, Brent
and Apple prices, cut at the annotated change points, Brent before 2000 at detected ones;
windows of 20 returns plus 5 summaries, stride 5): 37 segments, 1928 windows. A class is a
segment, an example is a window of it.

Split by series, never by time within one: meta-train on Brent's 25 segments, validate on
Bitcoin's 3, test on Apple's 9. Adjacent segments of one series share market history (a
window's trailing volatility may reach into the previous segment) and calendar periods, so a
split in time inside one series could leak; no segment of the test series, nor any date of it
as seen through another asset, is ever used in training or model selection. It also makes
the test a transfer to an asset never seen in meta-training, the daemon's situation when a
new stream starts.

Episodes: 5 shots and 5 queries a class (every kept segment has at least 10 windows).
Learned models are meta-trained on 5-way episodes of the Brent segments, early-stopped on
3-way episodes of the Bitcoin segments (there are only 3), then tested on 5-way and 2-way
episodes of the Apple segments, the same episodes for every model. Models: ``nearest_mean``
(ProtoNet with the identity embedding, i.e. the nearest class mean on raw features),
``nearest_neighbour`` (1-NN on raw features), ``protonet``, ``matching``, ``relation``; the
learned ones share an MLP embedding with meta-batch normalisation (which also removes the
scale difference between assets: every episode is normalised with its own support
statistics).

Examples
--------
>>> sorted(SPLIT.values())
['apple', 'bitcoin', 'brent']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptd.adapters.tasks import EpisodeSampler, regime_dataset

from .classifiers import BASELINES, test, train, verdict
from .harness.parallel import run_parallel

__all__ = ["MODELS", "PROTOCOL", "SPLIT", "run", "summary"]

MODELS = (*BASELINES, "protonet", "matching", "relation")
LABELS = {
    "nearest_mean": "nearest class mean, raw features (= ProtoNet, identity embedding)",
    "nearest_neighbour": "1-NN, raw features",
    "protonet": "ProtoNet (learned embedding)",
    "matching": "matching network",
    "relation": "relation network",
}
SPLIT = {"train": "brent", "val": "bitcoin", "test": "apple"}
"""The series whose segments make each split."""

PROTOCOL: dict[str, Any] = {
    "n_way": 5,
    "train_way": 5,
    "val_way": 3,
    "test_ways": [5, 2],
    "shots": 5,
    "n_query": 5,
    "meta_batch": 16,
    "val_episodes": 300,
    "test_episodes": 600,
    "max_updates": 2000,
    "eval_every": 50,
    "patience": 6,
    "hidden": [32, 32],
    "channels": [],
    "batch_norm": True,
    "lr": 1e-3,
    "matching_scale": 10.0,
}
QUICK: dict[str, Any] = {
    "val_episodes": 8,
    "test_episodes": 20,
    "max_updates": 4,
    "eval_every": 2,
    "meta_batch": 2,
    "hidden": [8],
}
WORKERS = 2


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """Every model on the Apple test segments (module docstring); ``quick`` for smoke tests."""
    config = {**PROTOCOL, **(QUICK if quick else {})}
    data = regime_dataset()
    segments = {
        part: [s._asdict() for s in data.segments if s.series == series]
        for part, series in SPLIT.items()
    }
    order = ("relation", "matching", "protonet", *BASELINES)
    jobs = [{"model": model, "config": config, "seed": seed} for model in order]
    results = run_parallel(_regimes_job, jobs, 1 if quick else WORKERS)
    by_model = {job["model"]: result for job, result in zip(jobs, results, strict=True)}
    return {
        "protocol": config,
        "split": {**SPLIT, "seed": seed},
        "segments": segments,
        "windows": len(data.y),
        "results": {
            str(way): {
                m: {**by_model[m]["test"][str(way)], **by_model[m]["training"]} for m in MODELS
            }
            for way in config["test_ways"]
        },
    }


def summary(result: dict[str, Any]) -> str:
    """A markdown table of ``run()`` output and the verdict against the baselines."""
    p = result["protocol"]
    counts = {part: len(segs) for part, segs in result["segments"].items()}
    ways = list(result["results"])
    lines = [
        "Regime segments of river's real prices as classes, windows of return features as "
        f"examples ({result['windows']} windows). Split by series: meta-train "
        f"{result['split']['train']} ({counts['train']} segments), meta-val "
        f"{result['split']['val']} ({counts['val']}, "
        f"{p['val_way']}-way), meta-test {result['split']['test']} ({counts['test']}). "
        f"{p['shots']}-shot, {p['n_query']} queries a class, {p['test_episodes']} test episodes "
        f"(the same for every model), mean accuracy ± 95 % CI. Learned models: MLP "
        f"{tuple(p['hidden'])} embedding with meta-batch norm, trained {p['train_way']}-way, "
        f"Adam {p['lr']}, early stopping every {p['eval_every']} updates (patience "
        f"{p['patience']}, at most {p['max_updates']}).",
        "",
        "| model | "
        + " | ".join(f"{w}-way {p['shots']}-shot" for w in ways)
        + " | updates (best) |",
        "|---" + "|---:" * (len(ways) + 1) + "|",
    ]
    for model in MODELS:
        cells = [
            f"{result['results'][w][model]['accuracy']:.3f} ± "
            f"{result['results'][w][model]['ci95']:.3f}"
            for w in ways
        ]
        r = result["results"][ways[0]][model]
        trained = "-" if "updates" not in r else f"{r['updates']} ({r['best_update']})"
        lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + f" | {trained} |")
    lines += ["", verdict(result["results"], LABELS, unit="way")]
    return "\n".join(lines)


def _regimes_job(job: dict[str, Any]) -> dict[str, Any]:
    config, seed = job["config"], job["seed"]
    data = regime_dataset()

    def sampler(part: str, way: int, offset: int) -> EpisodeSampler:
        classes = [s.label for s in data.segments if s.series == SPLIT[part]]
        return EpisodeSampler(
            data.x,
            data.y,
            classes,
            n_way=way,
            k_shot=config["shots"],
            n_query=config["n_query"],
            seed=seed * 1000 + offset,
        )

    val_tasks = sampler("val", config["val_way"], 1).sample(config["val_episodes"])
    learner, record = train(
        job["model"], sampler("train", config["train_way"], 0), val_tasks, config, seed
    )
    tests: dict[str, Sequence[Any]] = {
        str(way): sampler("test", way, 2 + way).sample(config["test_episodes"])
        for way in config["test_ways"]
    }
    return {"test": {way: test(learner, tasks) for way, tasks in tests.items()}, "training": record}
