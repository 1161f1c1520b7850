"""The speed section's Markdown: meta-training times and ratios, agreement, adaptation times
and the daemon's policy adaptation."""

from __future__ import annotations

from typing import Any

from .protocol import IMPLEMENTATIONS, LABELS

__all__ = ["summary"]


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
