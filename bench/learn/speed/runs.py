"""The speed section's measurements: meta-training and adaptation times of every
implementation, interleaved, their agreement with ours, and the daemon's policy adaptation
(see :mod:`bench.learn.speed`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from adaptd.adapters.fast_weights import adapt
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.protocol import Task

from ...inner import time_ms
from .baselines import Batch, HandBatched, L2LMaml, PerTaskLoop, adapt_copy
from .protocol import PROTOCOL, sinusoid_batch

__all__ = ["run"]


def run(*, quick: bool, seed: int) -> dict[str, Any]:
    """All measurements (see :mod:`bench.learn.speed`); ``quick`` cuts the repeats to a smoke
    test."""
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
