from __future__ import annotations

import torch

from adaptd.adapters.fast_weights import task_loss
from adaptd.adapters.network import PolicyNet
from bench.learn.efficiency import scratch
from bench.learn.efficiency.protocol import PROTOCOL, QUICK

NET = PolicyNet(1, (16, 16), activation="relu")
SETTINGS = {"max_steps": 200, "check_every": 50, "tolerance": 0.01}


def _waves(tasks: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = 10 * torch.rand(tasks, n, 1, generator=g) - 5
    return x, (1 + torch.arange(tasks)).view(-1, 1) * torch.sin(x[..., 0])


def test_from_scratch_fits_and_stacked_tasks_train_independently() -> None:
    x, y = _waves(3, 40)
    params, steps = scratch.from_scratch(NET, x, y, lr=1e-2, seed=5, **SETTINGS)
    with torch.no_grad():
        fitted = task_loss(NET, params, x, y)
    assert bool((fitted < 0.5 * y.pow(2).mean(dim=1)).all())
    assert all(step % SETTINGS["check_every"] == 0 and step <= 200 for step in steps.tolist())
    # Task 2 alone, from the seed it gets in the stack, ends where the stacked run left it.
    alone, alone_steps = scratch.from_scratch(NET, x[2:], y[2:], lr=1e-2, seed=7, **SETTINGS)
    assert alone_steps.tolist() == steps[2:].tolist()
    for k in params:
        torch.testing.assert_close(alone[k][0], params[k][2], rtol=1e-4, atol=1e-5)


def test_a_curve_point_chooses_adam_s_step_on_validation_and_times_one_task() -> None:
    job = {**PROTOCOL, **QUICK, "n": 5, "seed": 0}
    point = scratch.scratch_curve_point(job)
    scores = point["val_mse_by_lr"]
    assert point["lr"] == min(QUICK["lrs"], key=lambda lr: scores[str(lr)])
    assert point["mse"]["n"] + point["diverged"] == QUICK["test_tasks"]
    assert point["cpu_seconds"] > 0 and point["capped"] <= QUICK["test_tasks"]
