from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual import ContinualTask, strategies
from bench.learn.continual import data, jobs
from bench.learn.continual.runs import Setup


def _tasks() -> list[ContinualTask]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(2):
        x = torch.randn(40, 4, generator=g)
        y = (x[:, i] > 0).long()
        out.append(ContinualTask(i, x[:30], y[:30], x[30:], y[30:]))
    return out


SETUP = Setup(in_dim=4, out_dim=2, hidden=(8,), epochs=2, lr=0.3)


def test_strategy_names_are_every_registered_one_naive_first() -> None:
    names = jobs.strategy_names()
    assert names[0] == "naive" and sorted(names) == sorted(strategies())


def test_dataset_status_says_where_a_data_set_comes_from_or_why_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, images = jobs.dataset_status("digits")
    assert status == {"available": True, "source": "bundled with scikit-learn"}
    assert images is not None and images.in_dim == 64

    def missing(name: str) -> data.Dataset:
        raise FileNotFoundError(f"no {name}")

    monkeypatch.setattr(data, "load", missing)
    status, images = jobs.dataset_status("digits")
    assert images is None and status == {
        "available": False,
        "reason": "no digits; bundled with scikit-learn",
    }


@pytest.mark.parametrize("kind", ["tune", "run", "joint"])
def test_a_job_on_tasks_in_memory_does_what_its_kind_says(kind: str) -> None:
    job = {"job": kind, "strategy": "naive", "options": {}}
    result = jobs.run_on_tasks(job, _tasks(), SETUP)
    if kind == "tune":
        assert set(result) == {"score", "seconds", "error"} and result["error"] is None
        assert 0.0 <= result["score"] <= 1.0
    elif kind == "run":
        assert len(result["matrix"]) == 2 and result["strategy"] == "naive"
    else:
        assert result["steps"] > 0 and len(result["scores"]) == 2


def test_a_failed_tuning_run_scores_nothing_and_keeps_its_error() -> None:
    job = {"job": "tune", "strategy": "naive", "options": {"nonsense": 1}}
    result = jobs.run_on_tasks(job, _tasks(), SETUP)
    assert result["score"] is None and result["error"].startswith("TypeError")
