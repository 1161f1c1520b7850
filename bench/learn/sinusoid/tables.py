"""The sinusoid section's Markdown: per K, the test MSE of every learner, then the checks."""

from __future__ import annotations

from typing import Any

from .protocol import REPTILE

__all__ = ["summary"]


def summary(result: dict[str, Any]) -> str:
    """Markdown: per K, the test MSE of every learner, and the reference checks."""
    p = result["protocol"]
    lines = [
        f"MAML sinusoid protocol: 1-{'-'.join(map(str, p['hidden']))}-1 {p['activation']}, "
        f"meta-batch {p['meta_batch']}, K support + K query, Adam {p['meta_lr']}, "
        f"{p['train_inner_steps']} inner step of {p['inner_lr']} in training (the paper's "
        f"sinusoid MAML), {p['iterations']} meta-iterations (paper: 70,000), best of "
        f"validation on {p['val_tasks']} other waves every {p['eval_every']}. Test: "
        f"{p['test_tasks']} new waves, {p['query_points']} query points, MSE ± 95 % CI after "
        "0/1/10 steps of 0.01 (Meta-SGD: learned step sizes). Reptile: the Reptile code's "
        f"sinusoid settings, {REPTILE['inner_steps']} inner steps of {REPTILE['inner_lr']} on "
        f"all 2K points, outer step {REPTILE['outer_lr']} annealed to 0, "
        f"{REPTILE['iteration_share']:.0%} of the iterations, evaluated with steps of "
        f"{REPTILE['inner_lr']}. {result['workers']} worker process(es), "
        f"{result['wall_seconds']:.0f} s wall, {result['cpu_seconds']:.0f} CPU s in the jobs.",
    ]
    for k in p["shots"]:
        lines += [
            "",
            f"K = {k} | iterations (best) | train s | last-half gain | 0 steps | 1 step | 10 steps",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in result["runs"] if r["shots"] == k):
            gain = r["last_half_gain"]
            cells = [
                f"{r['iterations']} ({r['best_iteration']})",
                f"{r['train_seconds']:.0f}",
                "" if gain is None else f"{100 * gain:.1f} %",
                *(_cell(r["mse"][str(s)]) for s in p["eval_steps"]),
            ]
            label = "pretrained, fine-tune 0.01" if r["learner"] == "pretrained" else r["learner"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
            if "tuned" in r:
                tuned = r["tuned"]
                cells = ["", "", "", ""] + [
                    f"{_cell(tuned[str(s)])} (lr {tuned[str(s)]['lr']})"
                    for s in p["eval_steps"]
                    if s > 0
                ]
                lines.append("| pretrained, lr chosen on validation | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Last-half gain: how much the best validation MSE improved in the second half of "
        "training (near 0: converged at this budget).",
        "",
        "| check | reference | ours | at least as good within the CI |",
        "|---|---:|---:|---|",
    ]
    for c in result["checks"]:
        lines.append(
            f"| {c['check']} | {c['reference']:.3g} | {_cell(c)} | "
            f"{'pass' if c['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines)


def _cell(figures: dict[str, float]) -> str:
    diverged = figures.get("diverged", 0)
    note = f" ({diverged} of {diverged + figures['n']} diverged)" if diverged else ""
    mean, half = figures["mean"], figures["half_width"]
    if abs(mean) >= 1000:  # blown up on some tasks: the order of magnitude is what matters
        return f"{mean:.1e} ± {half:.1e}{note}"
    return f"{mean:.3f} ± {half:.3f}{note}"
