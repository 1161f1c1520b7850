from __future__ import annotations

import torch

from bench.learn.speed import runs, tables


def test_summary_has_every_implementation_and_the_daemon_s_shots() -> None:
    torch.set_num_threads(1)
    result = runs.run(quick=True, seed=0)
    result["unavailable"] = {"learn2learn": "not installed"}
    for timings in (*result["meta_train_ms"].values(), *result["adapt_ms"].values()):
        timings.pop("learn2learn", None)
    text = tables.summary(result)
    assert "| per-task PyTorch loop |" in text
    assert "| 50 |" in text
    assert "learn2learn `MAML`: unavailable (not installed)." in text
    assert "| learn2learn `MAML` | unavailable |  | unavailable |  |" in text
