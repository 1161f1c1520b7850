from __future__ import annotations

import json
import math

import torch

from adaptd.adapters.fast_weights import task_loss
from adaptd.adapters.network import PolicyNet
from bench.learn import efficiency

NET = PolicyNet(1, (16, 16), activation="relu")
SETTINGS = {"max_steps": 200, "check_every": 50, "tolerance": 0.01}


def _waves(tasks: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = 10 * torch.rand(tasks, n, 1, generator=g) - 5
    return x, (1 + torch.arange(tasks)).view(-1, 1) * torch.sin(x[..., 0])


def test_crossing_finds_the_first_size_and_interpolates_on_log_n() -> None:
    assert efficiency.crossing([5, 10, 20], [0.4, 0.3, 0.2], target=0.5) == {
        "n": 5,
        "n_interpolated": 5.0,
    }
    hit = efficiency.crossing([10, 1000], [1.0, 0.0], target=0.5)
    assert hit["n"] == 1000 and math.isclose(hit["n_interpolated"], 100.0)
    assert efficiency.crossing([10, 20], [1.0, 1.0], target=1.0)["n"] == 10
    assert efficiency.crossing([10, 20], [1.0, 0.9], target=0.5) is None


def test_from_scratch_fits_and_stacked_tasks_train_independently() -> None:
    x, y = _waves(3, 40)
    params, steps = efficiency.from_scratch(NET, x, y, lr=1e-2, seed=5, **SETTINGS)
    with torch.no_grad():
        fitted = task_loss(NET, params, x, y)
    assert bool((fitted < 0.5 * y.pow(2).mean(dim=1)).all())
    assert all(step % SETTINGS["check_every"] == 0 and step <= 200 for step in steps.tolist())
    # Task 2 alone, from the seed it gets in the stack, ends where the stacked run left it.
    alone, alone_steps = efficiency.from_scratch(NET, x[2:], y[2:], lr=1e-2, seed=7, **SETTINGS)
    assert alone_steps.tolist() == steps[2:].tolist()
    for k in params:
        torch.testing.assert_close(alone[k][0], params[k][2], rtol=1e-4, atol=1e-5)


def test_quick_run_reports_targets_curve_and_ratios() -> None:
    result = efficiency.run(quick=True, seed=0)
    json.dumps(result)
    assert sorted(result["meta"], key=int) == ["5", "10"]
    assert [p["n"] for p in result["scratch"]] == efficiency.QUICK["sizes"]
    assert all(p["lr"] in efficiency.QUICK["lrs"] for p in result["scratch"])
    assert result["meta_source"].startswith("trained here")
    for ratio in result["ratios"].values():
        assert ("examples_ratio" in ratio) == ratio["reached"]
    text = efficiency.summary(result)
    assert "| 5 |" in text and "10x target" in text
