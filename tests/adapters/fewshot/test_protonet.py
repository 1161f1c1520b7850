"""ProtoNet and its Prototypes: incremental statistics, distances, the identity embedding."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.fewshot import Embedding, ProtoNet, Prototypes
from adaptd.adapters.protocol import Task


def clusters(g: torch.Generator, ways: int, shots: int, dim: int = 4) -> tuple:
    centres = 3 * torch.randn(ways, dim, generator=g)
    y = torch.arange(ways).repeat(shots)
    return centres[y] + torch.randn(len(y), dim, generator=g), y


def direct(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    ways = int(y.max()) + 1
    means = torch.stack([z[y == c].mean(dim=0) for c in range(ways)])
    spread = torch.stack([((z[y == c] - means[c]) ** 2).sum(dim=1).mean() for c in range(ways)])
    return means, torch.bincount(y, minlength=ways), spread


@pytest.mark.parametrize("batch_norm", [True, False, None])
def test_incremental_update_equals_batch_recomputation(batch_norm: bool | None) -> None:
    embedding = None if batch_norm is None else Embedding(4, (6,), batch_norm=batch_norm)
    learner = ProtoNet(embedding, seed=1)
    g = torch.Generator().manual_seed(0)
    x, y = clusters(g, ways=3, shots=4)
    more_x, more_y = clusters(g, ways=5, shots=2)  # classes 3 and 4 are new
    protos = learner.fit(x, y)
    assert protos.update(more_x[:3], more_y[:3]) is protos  # only old classes
    protos.update(more_x[3:], more_y[3:])  # old classes and the two new ones
    z = protos.embed(torch.cat((x, more_x)))
    means, counts, spread = direct(z, torch.cat((y, more_y)))
    assert protos.n_classes == 5
    assert torch.equal(protos.counts, counts)
    torch.testing.assert_close(protos.prototypes, means)
    torch.testing.assert_close(protos.spread, spread)
    torch.testing.assert_close(protos.distances(more_x), ((z[12:, None] - means) ** 2).sum(-1))
    assert torch.equal(protos.scores(more_x), -protos.distances(more_x))


def test_a_single_example_class_has_zero_spread() -> None:
    protos = ProtoNet().fit(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 1]))
    protos.update(torch.tensor([[1.0, 4.0]]), torch.tensor([0]))
    assert protos.spread.tolist() == [1.0, 0.0]
    assert protos.prototypes.tolist() == [[1.0, 3.0], [3.0, 4.0]]


def test_identity_is_nearest_class_mean_on_raw_features() -> None:
    g = torch.Generator().manual_seed(2)
    x, y = clusters(g, ways=4, shots=3, dim=5)
    queries = 3 * torch.randn(20, 5, generator=g)
    means = torch.stack([x[y == c].mean(dim=0) for c in range(4)])
    expected = torch.cdist(queries, means).argmin(dim=1)
    assert torch.equal(ProtoNet().fit(x, y).predict(queries), expected)


def test_identity_meta_update_only_evaluates() -> None:
    g = torch.Generator().manual_seed(3)
    x, y = clusters(g, ways=3, shots=4)
    learner = ProtoNet()
    task = Task(x[:6], y[:6], x[6:], y[6:])
    stats = learner.meta_update([task])
    assert learner.params == {} and learner.updates == 1
    assert stats[:3] == learner.evaluate([task])[:3]
    assert learner.state_dict()["params"] == {}


def test_training_scores_match_the_fitted_prototypes() -> None:
    g = torch.Generator().manual_seed(4)
    learner = ProtoNet(Embedding(4, (8, 8)), lr=0.01, seed=0)
    for _ in range(3):
        tasks = []
        for _ in range(4):
            x, y = clusters(g, ways=3, shots=5)
            tasks.append(Task(x[:9], y[:9], x[9:], y[9:]))
        learner.meta_update(tasks)
    x, y = clusters(g, ways=3, shots=5)
    stacked = learner._scores(learner.params, x[None, :9], y[None, :9], x[None, 9:], 3)[0]
    torch.testing.assert_close(learner.fit(x[:9], y[:9]).scores(x[9:]), stacked)


def test_update_refuses_gaps_and_bad_shapes() -> None:
    protos = ProtoNet(Embedding(3, (4,))).fit(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"lacks \[2\]"):
        protos.update(torch.randn(1, 3), torch.tensor([3]))
    with pytest.raises(ValueError, match="x must have shape"):
        protos.update(torch.randn(1, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="y must have shape"):
        protos.update(torch.randn(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match="query_x"):
        protos.predict(torch.randn(3))
    assert protos.n_classes == 2 and protos.counts.tolist() == [2, 2]
    with pytest.raises(ValueError, match="context"):
        Prototypes(Embedding(3, (4,)), {}, None)
