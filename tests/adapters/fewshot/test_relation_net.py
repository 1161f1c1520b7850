"""RelationNet: relation scores in (0, 1), MSE to one-hot, pooling of the shots."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.fewshot import Embedding, RelationNet
from adaptd.adapters.protocol import Task


def task(seed: int, shots: int) -> Task:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat(shots + 2)
    x = 2 * torch.randn(3, 4, generator=g)[y] + torch.randn(len(y), 4, generator=g)
    return Task(x[: 3 * shots], y[: 3 * shots], x[3 * shots :], y[3 * shots :])


def test_scores_are_relations_in_the_unit_interval_and_the_loss_is_mse() -> None:
    learner = RelationNet(Embedding(4, (8,)), hidden=5, seed=2)
    t = task(0, shots=3)
    scores = learner.fit(t.support_x, t.support_y).scores(t.query_x)
    assert scores.shape == (6, 3) and bool(((scores > 0) & (scores < 1)).all())
    target = torch.nn.functional.one_hot(t.query_y, 3).float()
    assert learner.evaluate([t]).loss == pytest.approx(float(((scores - target) ** 2).mean()))
    assert learner.params["relation.0.weight"].shape == (5, 16)


def test_sum_and_mean_pooling_agree_for_one_shot_and_differ_otherwise() -> None:
    learners = [RelationNet(Embedding(4, (8,)), pooling=p, seed=0) for p in ("sum", "mean")]
    for shots, equal in ((1, True), (3, False)):
        t = task(1, shots)
        a, b = (m.fit(t.support_x, t.support_y).scores(t.query_x) for m in learners)
        assert torch.allclose(a, b) is equal


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"hidden": 0}, "hidden"), ({"hidden": True}, "hidden"), ({"pooling": "max"}, "pooling")],
)
def test_invalid_arguments_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RelationNet(Embedding(4, (8,)), **kwargs)
