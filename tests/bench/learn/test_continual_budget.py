from __future__ import annotations

import torch

from adaptd.adapters.continual import (
    ContinualModel,
    ContinualTask,
    Strategy,
    TrainConfig,
    run_sequence,
)
from adaptd.adapters.network import PolicyNet, init_params
from bench.learn.continual import budget


class CountingStrategy(Strategy):
    """Naive fine-tuning that counts its predictions (one per evaluated task)."""

    name = ""  # not registered

    def _reset(self) -> None:
        self.calls = 0

    def predict(self, model: ContinualModel, x: torch.Tensor, task: ContinualTask) -> torch.Tensor:
        self.calls += 1
        return super().predict(model, x, task)


def test_predicted_evaluations_match_what_run_sequence_does() -> None:
    # With one "second" per evaluation and free training, the prediction is the number of
    # evaluations run_sequence performs.
    x, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    tasks = [ContinualTask(i, x, y, x, y) for i in range(23)]
    for every in (1, 5, 10, 23):
        counter = CountingStrategy()
        net = PolicyNet(2, (3,), out_dim=2)
        model = ContinualModel(net, init_params(net, seed=0))
        run_sequence(model, counter, tasks, TrainConfig(batch_size=4), eval_every=every)
        predicted = budget.predicted_seconds(23, (0.0, 0.0), (1.0, 0.0), 0.0, eval_every=every)
        assert predicted == counter.calls, every


def test_a_bounded_cost_is_extrapolated_from_the_pilot_s_second_half() -> None:
    ramp = [0.01, 0.02, 0.03, 0.05, 0.05, 0.05, 0.05, 0.05]  # memory filling, then flat
    assert budget.fit(ramp, 0.0) == (0.05, 0.0)
    cheap = budget.plan([0.01] * 12, [0.001] * 12, growth=0.0, budget=100.0)
    assert cheap["tasks"] == 1000 and "fits" in cheap["reason"]
    dear = budget.plan([0.2] * 12, [0.001] * 12, growth=0.0, budget=100.0)
    assert dear["tasks"] == 200  # 1000 tasks: about 200 s of training alone
    assert "500 tasks would take" in dear["reason"]
    assert set(dear["predicted_seconds"]) == {str(n) for n in budget.LADDER}


def test_a_growing_cost_is_cut_much_earlier_than_a_flat_one_of_the_same_start() -> None:
    growing = [0.01 * (1 + 0.05 * i**2) for i in range(12)]
    a, b = budget.fit(growing, 2.0)
    assert abs(a - 0.01) < 1e-9 and abs(b - 0.0005) < 1e-9
    flat = budget.plan(growing[:1] * 12, [0.001] * 12, growth=0.0, budget=60.0)
    cut = budget.plan(growing, [0.001] * 12, growth=2.0, budget=60.0)
    assert flat["tasks"] == 1000
    assert cut["tasks"] < 200
    capped = budget.plan([0.001] * 12, [0.0] * 12, growth=0.0, budget=60.0, max_tasks=200)
    assert capped["tasks"] == 200 and "capped" in capped["reason"]
    hopeless = budget.plan([100.0] * 12, [0.0] * 12, growth=0.0, budget=1.0)
    assert hopeless["tasks"] == 10 and "over the budget" in hopeless["reason"]


def test_eval_every_gives_twenty_full_rows() -> None:
    assert budget.eval_every_for(1000) == 50
    assert budget.eval_every_for(20) == 1
    assert budget.eval_every_for(7) == 1
