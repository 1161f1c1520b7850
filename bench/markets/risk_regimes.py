"""``make bench-risk-regimes``: does the risk task's adaptation beat the unadapted policy on a
regime built for it? A synthetic stream where the volume starts to predict the variance of
the next return (:func:`volume_leads_variance`), replayed through the daemon's core and
learner in-process (:func:`~bench.markets.harness.replay_series`), meta-trained on the calm
part only, over several seeds and two adaptation settings.

For each seed, from the first policy published after the change to the end: the mean QLIKE
of the live policy (what the daemon serves), of the meta-learned initialisation unadapted,
of the task's reference (the baseline, what a subscriber holds without a policy) and of the
true variance (the oracle), against the squared next return floored as the task floors it.

Writes docs/bench/risk_regimes.json and prints one table a setting.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from adaptd.adapters.forecasting import qlike
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.learner.learners import use_threads

from ..machine import machine
from .harness import replay_series

__all__ = ["SETTINGS", "run", "score", "volume_leads_variance"]

CALM, LOUD, K, SIGMA = 1500, 1500, 6.0, 0.005
T0_MS, DAY_MS = 1_700_000_000_000, 86_400_000
LONGER = {"shots": 60, "query_size": 20, "inner_steps": 20, "inner_lr": 0.2}
"""60 shots (20 of them the query set) and 20 steps of 0.2: the integration test's."""
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "reptile, 60 shots, 20 steps of 0.2": {"meta_algorithm": "reptile", **LONGER},
    "fomaml, 60 shots, 20 steps of 0.2": {"meta_algorithm": "fomaml", **LONGER},
    "maml, 60 shots, 20 steps of 0.2": {"meta_algorithm": "maml", **LONGER},
    "metasgd, 60 shots, 20 steps of 0.2": {"meta_algorithm": "metasgd", **LONGER},
    "anil, 60 shots, 20 steps of 0.2": {"meta_algorithm": "anil", **LONGER},
}
"""The adaptation settings compared (on top of the harness's: the risk task alone, label
horizon 1, no calendar features, the gate at 0 and validation off, so that what is measured
is the adaptation, not which policies the gate lets through): the defaults, and each
meta-algorithm with more shots and steps."""


def volume_leads_variance(
    stream: str, calm: int, loud: int, *, k: float = K, sigma: float = SIGMA, seed: int = 0
) -> MarketSeries:
    """Daily events of which half, drawn at random, trade eight times the usual volume,
    throughout. For the first ``calm`` events the volume says nothing; in the ``loud`` events
    after them, the return that follows a high-volume event has ``k`` times the standard
    deviation ``sigma``. The volume's distribution never changes, so its z-score means the
    same on both sides of the change: only what it predicts does. A variance forecast that
    reads the volume can be far sharper than one that follows the returns alone (a GARCH, an
    EWMA), which only learns the new average level.

    >>> s = volume_leads_variance("V", 10, 10, seed=1)
    >>> len(s), s.annotations["change"], bool((s.volume > 3000).any())
    (20, (10,), True)
    """
    rng = np.random.default_rng(seed)
    n = calm + loud
    high = rng.random(n) < 0.5
    volume = 1000.0 * np.exp(rng.normal(0.0, 0.2, n)) * np.where(high, 8.0, 1.0)
    after_high = np.zeros(n, bool)
    after_high[1:] = high[:-1]
    scale = np.where(after_high & (np.arange(n) >= calm), k * sigma, sigma)
    log_returns = rng.normal(0.0, 1.0, n) * scale
    return MarketSeries(
        name="volume leads variance",
        stream=stream,
        ts_ms=T0_MS + DAY_MS * np.arange(n, dtype=np.int64),
        price=100.0 * np.exp(np.cumsum(log_returns)),
        volume=volume,
        annotations={"change": (calm,)},
        description=f"volume regimes: after event {calm}, a high volume multiplies the next "
        f"return's deviation by {k:g}",
    )


def score(
    seed: int, adaptation: dict[str, Any], calm: int = CALM, loud: int = LOUD
) -> dict[str, Any]:
    """One seed's replay under ``adaptation`` (see the module's description)."""
    series = volume_leads_variance("V", calm, loud, seed=seed)
    settings = load_settings(
        environ={},
        features={"label_horizon": 1, "calendar": []},
        adaptation={
            "tasks": ["risk"],
            "isolation": "thread",
            "gate_z": 0.0,
            "validate_policies": False,
            **adaptation,
        },
    )
    replay = replay_series(series, settings, meta_every=100, meta_until=calm, seed=seed)
    trace = replay.tasks["risk"]
    shifts = [s for s in replay.shifts if s >= calm - 10]
    after = [row for row in trace.publish_rows if row >= calm - 10]
    out: dict[str, Any] = {
        "seed": seed,
        "shift": shifts[0] if shifts else None,
        "published": len(after),
        "adaptations": trace.adaptations,
    }
    if not after:
        return out
    r = np.diff(np.log(series.price), prepend=np.log(series.price[0]))
    t = np.arange(after[0] + 1, len(r) - 1)
    ref = trace.reference[t]
    y = np.maximum(r[t + 1] ** 2, 0.01 * ref)
    truth = np.where(series.volume[t] > 3000.0, K * K, 1.0) * SIGMA**2
    forecasts = {
        "live": ref * np.exp(trace.live[t]),
        "init": ref * np.exp(trace.init[t]),
        "reference": ref,
        "oracle": truth,
    }
    out["from"] = int(t[0])
    out["qlike"] = {k: float(np.mean(qlike(y, f))) for k, f in forecasts.items()}
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many seeds published after the change, and on how many the live policy beat the
    initialisation and the reference (by any margin), with the medians."""
    done = [row["qlike"] for row in rows if "qlike" in row]
    return {
        "seeds": len(rows),
        "published": len(done),
        "beats_init": sum(q["live"] < q["init"] for q in done),
        "beats_reference": sum(q["live"] < q["reference"] for q in done),
        "median": {k: float(np.median([q[k] for q in done])) for k in done[0]} if done else {},
    }


def run(out: Path | None, seeds: int = 12) -> dict[str, Any]:
    use_threads(1)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for name, adaptation in SETTINGS.items():
        rows = [score(seed, adaptation) for seed in range(seeds)]
        results[name] = {"adaptation": adaptation, "seeds": rows, "summary": summary(rows)}
        print(table(name, rows), flush=True)
    report = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        "seconds": time.perf_counter() - started,
        "design": {"calm": CALM, "loud": LOUD, "k": K, "sigma": SIGMA},
        "settings": results,
    }
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def table(name: str, rows: list[dict[str, Any]]) -> str:
    """A markdown table of one setting's seeds, then its summary line."""
    lines = [
        f"**{name}**",
        "",
        "| seed | shift | first published | live | initialisation | reference | oracle |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        q = row.get("qlike")
        cells = (
            [f"{q[k]:.3f}" for k in ("live", "init", "reference", "oracle")]
            if q
            else ["nothing published"] + [""] * 3
        )
        lines.append(
            f"| {row['seed']} | {row['shift']} | {row.get('from', '')} | "
            + " | ".join(cells)
            + " |"
        )
    s = summary(rows)
    lines += [
        "",
        f"Published after the change on {s['published']} of {s['seeds']} seeds; the live policy "
        f"beat the initialisation on {s['beats_init']} and the reference on "
        f"{s['beats_reference']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The risk task's adaptation against the unadapted policy on a synthetic "
        "regime built for it (docs/benchmarks.md)."
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=12)
    args = parser.parse_args()
    run(args.out, args.seeds)


if __name__ == "__main__":
    main()
