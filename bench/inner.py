"""Micro-benchmark of the inner loop: "autograd" against "func", one task, one thread.

Times, per backend, a full adaptation (``adapt`` with ``steps`` steps, as the daemon runs it
after a shift) and a single gradient call (``grad_and_loss``), plus the numpy serving path
(``NumpyPolicy.predict`` of one feature vector, the daemon's per-event prediction). Reports
p50/p99 over ``repeats`` timed calls after a warm-up, the func/autograd ratios and the machine.

Run it with ``python -m bench.inner [--repeats N] [--out FILE.json]``.

Examples
--------
>>> result = run(repeats=3)
>>> sorted(result["backends"])
['autograd', 'func']
>>> sorted(result["backends"]["func"])
['adapt_ms', 'grad_ms']
>>> print(format_result(result))  # doctest: +ELLIPSIS
inner-loop benchmark: ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptd.adapters.fast_weights import BACKENDS, adapt, grad_and_loss
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.serving import NumpyPolicy

__all__ = ["format_result", "main", "run"]

WARMUP = 10


def run(
    *,
    in_dim: int = 10,
    hidden: tuple[int, ...] = (32, 32),
    shots: int = 12,
    steps: int = 5,
    repeats: int = 200,
    threads: int = 1,
) -> dict[str, Any]:
    """Time both backends on one seeded task; returns milliseconds (p50, p99) and the machine.

    ``threads`` is applied with ``torch.set_num_threads`` for the run and restored after.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads!r}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = PolicyNet(in_dim, tuple(hidden))
        params = init_params(net, seed=0)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(shots, in_dim, generator=generator)
        y = torch.randn(shots, generator=generator)
        backends: dict[str, dict[str, dict[str, float]]] = {}
        for backend in BACKENDS:
            backends[backend] = {
                "adapt_ms": time_ms(
                    lambda b=backend: adapt(net, params, x, y, steps=steps, lr=0.05, backend=b),
                    repeats,
                ),
                "grad_ms": time_ms(
                    lambda b=backend: grad_and_loss(net, params, x, y, backend=b), repeats
                ),
            }
        policy = NumpyPolicy.from_params(
            {k: v.numpy() for k, v in params.items()}, activation=net.activation
        )
        vector = x[0].numpy().astype(np.float64)
        serve_ms = time_ms(lambda: policy.predict(vector), repeats)
    finally:
        torch.set_num_threads(previous_threads)
    ratio = {
        f"{what}_p50": backends["func"][what]["p50"] / backends["autograd"][what]["p50"]
        for what in ("adapt_ms", "grad_ms")
    }
    return {
        "config": {
            "in_dim": in_dim,
            "hidden": list(hidden),
            "shots": shots,
            "steps": steps,
            "repeats": repeats,
            "threads": threads,
        },
        "backends": backends,
        "ratio_func_over_autograd": ratio,
        "numpy_predict_us": {k: v * 1000.0 for k, v in serve_ms.items()},
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }


def format_result(result: dict[str, Any]) -> str:
    """A short human-readable table of ``run()`` output."""
    cfg, machine = result["config"], result["machine"]
    lines = [
        f"inner-loop benchmark: in_dim={cfg['in_dim']} hidden={tuple(cfg['hidden'])} "
        f"shots={cfg['shots']} steps={cfg['steps']} repeats={cfg['repeats']} "
        f"threads={cfg['threads']}",
        f"machine: {machine['processor']}, {machine['cpu_count']} cpus, torch {machine['torch']}",
        f"{'backend':<10}{'adapt p50':>12}{'adapt p99':>12}{'grad p50':>12}{'grad p99':>12}",
    ]
    for name, timing in result["backends"].items():
        adapt_ms, grad_ms = timing["adapt_ms"], timing["grad_ms"]
        lines.append(
            f"{name:<10}{adapt_ms['p50']:>10.3f}ms{adapt_ms['p99']:>10.3f}ms"
            f"{grad_ms['p50']:>10.3f}ms{grad_ms['p99']:>10.3f}ms"
        )
    ratio = result["ratio_func_over_autograd"]
    serve = result["numpy_predict_us"]
    lines.append(
        f"func/autograd p50: adapt {ratio['adapt_ms_p50']:.2f}x, grad {ratio['grad_ms_p50']:.2f}x"
    )
    lines.append(f"numpy predict (one vector): p50 {serve['p50']:.1f}us p99 {serve['p99']:.1f}us")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table, optionally write the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m bench.inner")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, threads=args.threads)
    print(format_result(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def time_ms(call: Callable[[], object], repeats: int, warmup: int = WARMUP) -> dict[str, float]:
    """p50 and p99 wall milliseconds of ``call`` over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        call()
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        samples[i] = time.perf_counter() - start
    p50, p99 = np.percentile(samples * 1000.0, [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


if __name__ == "__main__":
    raise SystemExit(main())
