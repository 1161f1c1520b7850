"""The efficiency section's Markdown: the targets, the from-scratch curve, the ratios against
the design's 10x."""

from __future__ import annotations

from typing import Any

__all__ = ["summary"]


def summary(result: dict[str, Any]) -> str:
    """Markdown: the targets, the from-scratch curve and the ratios against 10x."""
    p, source = result["protocol"], result["meta_source"]
    lines = [
        f'Sinusoid tasks, `PolicyNet(1, (40, 40), "relu")`. Meta-learned: MAML ({source}), '
        f"{p['adapt_steps']} steps of 0.01 on K points. From scratch: full-batch Adam until "
        f"the training MSE falls by less than {100 * p['tolerance']:.0f} % in "
        f"{p['check_every']} steps (at most {p['max_steps']}), step size per n from "
        f"{p['lrs']} on {p['val_tasks']} validation waves. Query MSE over {p['test_tasks']} "
        f"held-out waves, {p['query_points']} query points each, ± 95 % CI.",
        "",
        "| K | meta-learned MSE | adaptation CPU ms (wall) |",
        "|---:|---:|---:|",
    ]
    for k, m in result["meta"].items():
        lines.append(f"| {k} | {_cell(m['mse'])} | {m['adapt_cpu_ms']:.2f} ({m['adapt_ms']:.2f}) |")
    lines += [
        "",
        "| n (from scratch) | MSE | Adam lr | median steps | capped | CPU s, one task (wall) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for point in result["scratch"]:
        lines.append(
            f"| {point['n']} | {_cell(point['mse'])} | {point['lr']:g} | "
            f"{point['steps_median']:.0f} | {point['capped']} | {point['cpu_seconds']:.2f} "
            f"({point['seconds']:.2f}) |"
        )
    lines += [
        "",
        "| K | examples from scratch | ratio | time ratio | 10x target |",
        "|---:|---:|---:|---:|---|",
    ]
    for k, r in result["ratios"].items():
        if not r["reached"]:
            lines.append(
                f"| {k} | never within n = {result['scratch'][-1]['n']} | "
                f"> {r['examples_ratio_above']:.0f}x | | met |"
            )
            continue
        met = "met" if r["examples_ratio"] >= result["target_ratio"] else "not met"
        lines.append(
            f"| {k} | {r['n']} (interpolated {r['n_interpolated']:g}) | "
            f"{r['examples_ratio']:.0f}x ({r['examples_ratio_interpolated']:.1f}x) | "
            f"{r['seconds_ratio']:.0f}x | {met} |"
        )
    return "\n".join(lines)


def _cell(figures: dict[str, float]) -> str:
    return f"{figures['mean']:.3f} ± {figures['half_width']:.3f}"
