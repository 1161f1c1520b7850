"""Speed benchmark: MAML meta-training and adaptation, ours against three references.

On the MAML sinusoid protocol (meta-batch 25, K = 10 support + 10 query points, amplitude
U[0.1, 5], phase U[0, π], x U[-5, 5], ``PolicyNet(1, (40, 40), activation="relu")``, inner step
0.01, Adam 1e-3), with 1 and 5 inner steps, in one process and one thread:

- **meta-training**, milliseconds per meta-iteration (meta-gradient plus Adam step), median over
  ``repeats`` after a warm-up, for ours (:class:`adaptd.adapters.meta.MAML`, backends "autograd"
  and "func"), a plain per-task loop, learn2learn's ``MAML`` and a hand-batched implementation
  (:mod:`bench.learn.baselines`); the implementations take turns within every repeat,
  so load from other processes hits them alike. Ratios are to ours ("autograd");
- **agreement**: the largest relative difference of each implementation's meta-gradient from
  ours on one batch (the figures compare the same computation);
- **adaptation** of one task (K = 10), p50 and p99 milliseconds: ours (``learner.adapt``), the
  per-task loop (deep copy plus SGD) and learn2learn (``clone()`` plus first-order ``adapt``);
- **daemon policy adaptation**: ``fast_weights.adapt`` of ``PolicyNet(<daemon feature count>,
  (32, 32), "tanh")``, 5 steps at the daemon's default inner step size and backend, for
  K = 5, 20, 50, p50 and p99 over ``daemon_repeats`` adaptations.

learn2learn is optional (``python -m bench.learn.learn2learn`` builds it); without it
its rows say "unavailable".

Examples
--------
>>> batch = sinusoid_batch(torch.Generator().manual_seed(0), tasks=2, shots=3, queries=4)
>>> [tuple(part.shape) for part in batch]
[(2, 3, 1), (2, 3), (2, 4, 1), (2, 4)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from adaptd.adapters.fast_weights import adapt
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Task

from ..inner import time_ms
from .baselines import Batch, HandBatched, L2LMaml, PerTaskLoop, adapt_copy

__all__ = ["PROTOCOL", "run", "sinusoid_batch", "summary"]

PROTOCOL: dict[str, Any] = {
    "tasks": 25,
    "shots": 10,
    "queries": 10,
    "hidden": [40, 40],
    "activation": "relu",
    "inner_lr": 0.01,
    "meta_lr": 1e-3,
    "inner_steps": [1, 5],
    "daemon_shots": [5, 20, 50],
    "daemon_steps": 5,
}
IMPLEMENTATIONS = ("ours", "ours_func", "loop", "learn2learn", "hand_batched")
LABELS = {
    "ours": "ours: `meta.MAML` (autograd)",
    "ours_func": "ours: `meta.MAML` (func, vmap)",
    "loop": "per-task PyTorch loop",
    "learn2learn": "learn2learn `MAML`",
    "hand_batched": "hand-batched (`baddbmm`)",
}


def sinusoid_batch(generator: torch.Generator, *, tasks: int, shots: int, queries: int) -> Batch:
    """A meta-batch of sinusoid tasks, ``y = A sin(x - φ)``, stacked per task."""
    amplitude = 0.1 + 4.9 * torch.rand(tasks, 1, generator=generator)
    phase = math.pi * torch.rand(tasks, 1, generator=generator)
    x = 10.0 * torch.rand(tasks, shots + queries, generator=generator) - 5.0
    y = amplitude * torch.sin(x - phase)
    x = x.unsqueeze(-1)
    return x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:]


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """All measurements (see the module docstring); ``quick`` cuts the repeats to a smoke test."""
    repeats, warmup = (3, 1) if quick else (30, 5)
    adapt_repeats = 5 if quick else 300
    daemon_repeats = 20 if quick else 1000
    generator = torch.Generator().manual_seed(seed)
    batches = [
        sinusoid_batch(
            generator, tasks=PROTOCOL["tasks"], shots=PROTOCOL["shots"], queries=PROTOCOL["queries"]
        )
        for _ in range(4)
    ]
    net = PolicyNet(1, tuple(PROTOCOL["hidden"]), activation=PROTOCOL["activation"])
    ours_class = _ours_class()
    unavailable: dict[str, str] = {}
    meta_ms: dict[str, dict[str, Any]] = {}
    adapt_ms: dict[str, dict[str, Any]] = {}
    agreement: dict[str, dict[str, float]] = {}
    for steps in PROTOCOL["inner_steps"]:
        trainers = _trainers(net, ours_class, steps, seed, unavailable)
        agreement[str(steps)] = _agreement(trainers, batches[0])
        meta_ms[str(steps)] = _time_round_robin(
            {name: t["step"] for name, t in trainers.items()}, batches, repeats, warmup
        )
        x, y = batches[0][0][0], batches[0][1][0]
        adapters = {name: t["adapt"] for name, t in trainers.items() if "adapt" in t}
        adapt_ms[str(steps)] = {
            name: time_ms(lambda a=call, x=x, y=y: a(x, y), adapt_repeats, warmup)
            for name, call in adapters.items()
        }
    return {
        "protocol": PROTOCOL,
        "ours": f"{ours_class.__module__}.{ours_class.__name__}",
        "repeats": {"meta": repeats, "adapt": adapt_repeats, "daemon": daemon_repeats},
        "unavailable": unavailable,
        "meta_train_ms": meta_ms,
        "ratio_to_ours": {
            steps: {name: t["median"] / timings["ours"]["median"] for name, t in timings.items()}
            for steps, timings in meta_ms.items()
        },
        "meta_gradient_max_rel_diff": agreement,
        "adapt_ms": adapt_ms,
        "daemon_adapt": _daemon_adaptation(daemon_repeats, seed),
    }


def summary(result: dict[str, Any]) -> str:
    """Markdown tables of ``run()`` output."""
    steps = list(result["meta_train_ms"])
    p = result["protocol"]
    lines = [
        f"MAML sinusoid protocol: meta-batch {p['tasks']}, K = {p['shots']} support + "
        f"{p['queries']} query, 1-{'-'.join(map(str, p['hidden']))}-1 {p['activation']}, "
        f"inner lr {p['inner_lr']}, Adam {p['meta_lr']}; ours is `{result['ours']}`. "
        f"Median of {result['repeats']['meta']} meta-iterations after warm-up, implementations "
        "interleaved.",
        "",
        "| meta-training, ms per meta-iteration | "
        + " | ".join(f"{s} step{'s' if s != '1' else ''} | vs ours" for s in steps)
        + " |",
        "|---" + "|---:|---:" * len(steps) + "|",
    ]
    for name in IMPLEMENTATIONS:
        cells = []
        for s in steps:
            timing = result["meta_train_ms"][s].get(name)
            if timing is None:
                cells += ["unavailable", ""]
            else:
                ratio = result["ratio_to_ours"][s][name]
                cells += [f"{timing['median']:.1f}", f"{ratio:.2f}x"]
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    worst = max(
        (v for diffs in result["meta_gradient_max_rel_diff"].values() for v in diffs.values()),
        default=0.0,
    )
    lines += [
        "",
        f"All meta-gradients agree with ours to a relative {worst:.1e} or better on one batch.",
    ]
    for name, reason in result["unavailable"].items():
        lines.append(f"{LABELS[name]}: unavailable ({reason}).")
    lines += [
        "",
        f"| adaptation of one task (K = {p['shots']}), ms | "
        + " | ".join(f"{s} step{'s' if s != '1' else ''} p50 | p99" for s in steps)
        + " |",
        "|---" + "|---:|---:" * len(steps) + "|",
    ]
    for name in IMPLEMENTATIONS:
        if name not in result["adapt_ms"][steps[0]]:
            continue
        cells = [
            f"{result['adapt_ms'][s][name]['p50']:.2f} | {result['adapt_ms'][s][name]['p99']:.2f}"
            for s in steps
        ]
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    daemon = result["daemon_adapt"]
    lines += [
        "",
        f'Daemon policy adaptation: `PolicyNet({daemon["in_dim"]}, (32, 32), "tanh")`, '
        f"{daemon['steps']} steps, lr {daemon['lr']}, backend {daemon['backend']!r}, "
        f"{daemon['repeats']} adaptations per K.",
        "",
        "| K | p50 ms | p99 ms |",
        "|---:|---:|---:|",
    ]
    for shots, timing in daemon["ms"].items():
        lines.append(f"| {shots} | {timing['p50']:.2f} | {timing['p99']:.2f} |")
    return "\n".join(lines)


def _ours_class() -> type:
    # Imported late: the meta-learners are written alongside this benchmark.
    try:
        from adaptd.adapters.meta import MAML
    except ImportError:
        from adaptd.adapters.meta import FOMAML as MAML
    return MAML


def _trainers(
    net: PolicyNet, ours_class: type, steps: int, seed: int, unavailable: dict[str, str]
) -> dict[str, dict[str, Callable[..., Any]]]:
    """Per implementation: ``step(batch)``, ``gradient(batch)`` and, where timed, ``adapt``."""
    lr, meta_lr = PROTOCOL["inner_lr"], PROTOCOL["meta_lr"]
    first_order = not getattr(ours_class, "second_order", False)
    params = init_params(net, seed)
    out: dict[str, dict[str, Callable[..., Any]]] = {}
    for name, backend in (("ours", "autograd"), ("ours_func", "func")):
        learner = ours_class(
            net, inner_steps=steps, inner_lr=lr, meta_lr=meta_lr, backend=backend, seed=seed
        )
        out[name] = {
            "step": lambda b, m=learner: m.meta_update(_tasks(b)),
            "gradient": lambda b, m=learner: m.meta_gradient(_tasks(b))[0],
        }
        if name == "ours":
            out[name]["adapt"] = lambda x, y, m=learner: m.adapt(x, y)
    kwargs = {"inner_steps": steps, "inner_lr": lr, "meta_lr": meta_lr, "first_order": first_order}
    loop = PerTaskLoop(net, params, **kwargs)
    out["loop"] = {
        "step": loop.step,
        "gradient": loop.meta_gradient,
        "adapt": lambda x, y: adapt_copy(loop.model, x, y, steps, lr),
    }
    try:
        l2l = L2LMaml(net, params, **kwargs)
    except ImportError as exc:
        unavailable["learn2learn"] = f"{exc}; `python -m bench.learn.learn2learn`"
    else:
        out["learn2learn"] = {
            "step": l2l.step,
            "gradient": l2l.meta_gradient,
            "adapt": lambda x, y: l2l.adapt(x, y, steps),
        }
    hand = HandBatched(net, params, **kwargs)
    out["hand_batched"] = {"step": hand.step, "gradient": hand.meta_gradient}
    return out


def _tasks(batch: Batch) -> list[Task]:
    return [Task(*parts) for parts in zip(*batch, strict=True)]


def _agreement(
    trainers: dict[str, dict[str, Callable[..., Any]]], batch: Batch
) -> dict[str, float]:
    """Largest relative difference of each meta-gradient from ours (all start from ``seed``)."""
    ours = trainers["ours"]["gradient"](batch)
    out = {}
    for name, trainer in trainers.items():
        grads = trainer["gradient"](batch)
        out[name] = max(
            float((grads[k] - ours[k]).abs().max() / ours[k].abs().max().clamp_min(1e-12))
            for k in ours
        )
    return out


def _time_round_robin(
    calls: dict[str, Callable[[Batch], object]], batches: list[Batch], repeats: int, warmup: int
) -> dict[str, dict[str, float]]:
    samples = {name: np.empty(repeats) for name in calls}
    for r in range(-warmup, repeats):
        batch = batches[r % len(batches)]
        for name, call in calls.items():
            start = time.perf_counter()
            call(batch)
            if r >= 0:
                samples[name][r] = time.perf_counter() - start
    return {
        name: {
            "median": float(np.median(s * 1e3)),
            "p10": float(np.percentile(s * 1e3, 10)),
            "p90": float(np.percentile(s * 1e3, 90)),
        }
        for name, s in samples.items()
    }


def _daemon_adaptation(repeats: int, seed: int) -> dict[str, Any]:
    from adaptd.daemon.config.settings import AdaptationSettings, FeatureSettings
    from adaptd.daemon.core.features import feature_names

    settings = AdaptationSettings()
    in_dim = len(feature_names(FeatureSettings()))
    net = PolicyNet(in_dim, (32, 32), activation="tanh")
    params = init_params(net, seed)
    generator = torch.Generator().manual_seed(seed)
    steps = PROTOCOL["daemon_steps"]
    ms = {}
    for shots in PROTOCOL["daemon_shots"]:
        x = torch.randn(shots, in_dim, generator=generator)
        y = torch.randn(shots, generator=generator)
        ms[str(shots)] = time_ms(
            lambda x=x, y=y: adapt(
                net, params, x, y, steps=steps, lr=settings.inner_lr, backend=settings.backend
            ),
            repeats,
            warmup=10,
        )
    return {
        "in_dim": in_dim,
        "steps": steps,
        "lr": settings.inner_lr,
        "backend": settings.backend,
        "repeats": repeats,
        "ms": ms,
    }
