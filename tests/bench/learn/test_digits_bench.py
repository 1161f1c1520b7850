from __future__ import annotations

import json

import pytest
import torch

from bench.learn import digits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def quick() -> dict:
    torch.set_num_threads(1)
    return digits.run(quick=True, seed=3)


def test_split_is_disjoint_and_seeded(quick: dict) -> None:
    split = quick["split"]
    parts = [set(split[k]) for k in ("train", "val", "test")]
    assert [len(p) for p in parts] == [24, 6, 10]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] <= set(range(40))
    assert split["seed"] == 3


def test_quick_run_reports_every_model_at_both_shots(quick: dict) -> None:
    json.dumps(quick)
    assert set(quick["results"]) == {"1", "5"}
    for shots, table in quick["results"].items():
        assert tuple(table) == digits.MODELS
        for model, r in table.items():
            assert r["episodes"] == digits.QUICK["test_episodes"], (shots, model)
            assert 0.0 <= r["accuracy"] <= 1.0 and r["ci95"] >= 0.0
            if model in digits.BASELINES:
                assert "updates" not in r
            else:
                assert 1 <= r["updates"] <= digits.QUICK["max_updates"]
                assert r["best_update"] in {int(s) for s in r["val_curve"]}
                assert r["val_accuracy"] == max(r["val_curve"].values())
    # Raw pixels already separate 5 digit classes well: the baselines are far above chance.
    assert quick["results"]["5"]["nearest_mean"]["accuracy"] > 0.6
    text = digits.summary(quick)
    assert "| MAML (second order) |" in text and "5-way 5-shot" in text


def test_one_shot_nearest_mean_equals_nearest_neighbour(quick: dict) -> None:
    # With one example a class, the class mean is that example: the two rules coincide, up
    # to exact distance ties (pixels take 17 values), which each breaks in its own order.
    table = quick["results"]["1"]
    gap = abs(table["nearest_mean"]["accuracy"] - table["nearest_neighbour"]["accuracy"])
    assert gap < 0.005
