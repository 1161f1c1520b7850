from __future__ import annotations

import torch

from bench.learn.speed.protocol import sinusoid_batch


def test_sinusoid_tasks_follow_the_maml_protocol() -> None:
    sx, sy, qx, qy = sinusoid_batch(
        torch.Generator().manual_seed(1), tasks=200, shots=10, queries=10
    )
    x = torch.cat([sx, qx], dim=1).squeeze(-1)
    y = torch.cat([sy, qy], dim=1)
    assert x.min() >= -5 and x.max() <= 5
    amplitude_bound = y.abs().amax(dim=1)
    assert amplitude_bound.max() <= 5 and amplitude_bound.max() > 3
