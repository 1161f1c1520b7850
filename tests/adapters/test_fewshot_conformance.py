"""Conformance of every FewShotClassifier in adaptd.adapters.fewshot, found automatically.

Episodes are Gaussian clusters whose class means differ in two of eight features while the
other six carry large noise: raw-feature distances are dominated by noise, and a learned
embedding that finds the informative directions classifies well, on classes never seen.
"""

from __future__ import annotations

import io

import pytest
import torch

import adaptd.adapters.fewshot as fewshot
from adaptd.adapters.discovery import defined_classes
from adaptd.adapters.fewshot import Embedding
from adaptd.adapters.protocol import EpisodeStats, FewShotClassifier, FittedSupport, Task

IN_DIM, INFORMATIVE = 8, 2
METHODS = ("meta_update", "fit", "state_dict", "load_state_dict")


def _discover() -> dict[str, type]:
    found: dict[str, type] = {}
    for cls in defined_classes(fewshot.__name__):
        if getattr(cls, "algorithm", "") and all(callable(getattr(cls, m, None)) for m in METHODS):
            found[cls.algorithm] = cls
    return found


LEARNERS = _discover()
# Every discovered learner with its defaults, plus options that change the computation.
CONFIGS = [(name, {}) for name in sorted(LEARNERS)] + [("matching", {"fce": True})]
IDS = [name + "".join(f"-{k}" for k in kwargs) for name, kwargs in CONFIGS]


def make(name: str, kwargs: dict, *, seed: int = 0, lr: float = 1e-2, hidden=(32, 32)):
    return LEARNERS[name](Embedding(IN_DIM, hidden), lr=lr, seed=seed, **kwargs)


def episode(g: torch.Generator, ways: int = 5, shots: int = 3, queries: int = 4) -> Task:
    centres = torch.zeros(ways, IN_DIM)
    centres[:, :INFORMATIVE] = 2.0 * torch.randn(ways, INFORMATIVE, generator=g)
    noise = torch.tensor([0.5] * INFORMATIVE + [3.0] * (IN_DIM - INFORMATIVE))
    y = torch.arange(ways).repeat(shots + queries)
    x = centres[y] + noise * torch.randn(len(y), IN_DIM, generator=g)
    n = ways * shots
    return Task(x[:n], y[:n], x[n:], y[n:])


def batches(seed: int, n: int, size: int = 4, **shape) -> list[list[Task]]:
    g = torch.Generator().manual_seed(seed)
    return [[episode(g, **shape) for _ in range(size)] for _ in range(n)]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_discovers_the_three_learners_and_each_is_exported() -> None:
    assert {"protonet", "matching", "relation"} <= set(LEARNERS)
    for cls in LEARNERS.values():
        assert getattr(fewshot, cls.__name__) is cls


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_is_a_few_shot_classifier_with_public_arguments(name: str, kwargs: dict) -> None:
    embedding = Embedding(IN_DIM, (16,))
    learner = LEARNERS[name](embedding, lr=0.02, seed=7, **kwargs)
    assert isinstance(learner, FewShotClassifier)
    assert (learner.embedding, learner.lr, learner.seed, learner.updates) == (embedding, 0.02, 7, 0)
    assert learner.algorithm == name
    for key, value in kwargs.items():
        assert getattr(learner, key) == value


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_meta_training_beats_chance_on_held_out_classes(name: str, kwargs: dict) -> None:
    held_out = batches(seed=100, n=1, size=60)[0]
    learner = make(name, kwargs)
    before = learner.evaluate(held_out).accuracy
    for batch in batches(seed=1, n=100, size=8):
        learner.meta_update(batch)
    after = learner.evaluate(held_out).accuracy
    assert after > 0.6, (before, after)  # chance is 0.2; the best raw-feature rule is ~0.35
    assert after > before + 0.25, (before, after)
    # evaluate agrees with what a fitted support set predicts.
    task = held_out[0]
    fitted = learner.fit(task.support_x, task.support_y)
    hits = (fitted.predict(task.query_x) == task.query_y).float().mean()
    assert float(hits) == pytest.approx(learner.evaluate([task]).accuracy)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_gradients_reach_every_learned_parameter(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    before = learner.params
    learner.meta_update(batches(seed=2, n=1)[0])
    # Adam's first step moves every entry with a non-zero gradient by about lr.
    unmoved = [k for k in before if torch.equal(before[k], learner.params[k])]
    assert unmoved == []
    assert all(not v.requires_grad for v in learner.params.values())


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_seeded_runs_repeat_exactly(name: str, kwargs: dict) -> None:
    runs = []
    rng_state = torch.random.get_rng_state()
    for _ in range(2):
        learner = make(name, kwargs, seed=3)
        stats = [learner.meta_update(batch)[:3] for batch in batches(seed=4, n=3)]
        runs.append((learner.params, stats))
    assert same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert not same(make(name, kwargs, seed=4).params, make(name, kwargs, seed=3).params)
    assert torch.equal(rng_state, torch.random.get_rng_state())  # private generators only


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_identically(name: str, kwargs: dict) -> None:
    data = batches(seed=5, n=4)
    original = make(name, kwargs)
    for batch in data[:2]:
        original.meta_update(batch)
    saved = original.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    restored = make(name, kwargs, seed=99)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert same(restored.params, original.params)
    assert restored.updates == 2
    for batch in data[2:]:
        assert original.meta_update(batch)[:3] == restored.meta_update(batch)[:3]
    assert same(restored.params, original.params)
    assert saved["updates"] == 2 and not same(saved["params"], original.params)  # a copy


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_foreign_or_misshapen_state_is_refused(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    other = next(n for n in LEARNERS if n != name)
    with pytest.raises(ValueError, match="algorithm"):
        learner.load_state_dict(make(other, {}).state_dict())
    with pytest.raises(ValueError, match="shape"):
        learner.load_state_dict(make(name, kwargs, hidden=(32, 16)).state_dict())
    with pytest.raises(ValueError, match="do not match"):
        learner.load_state_dict(make(name, kwargs, hidden=(32, 32, 32)).state_dict())


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_fitted_support_is_a_frozen_snapshot(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    module_before = {k: v.clone() for k, v in learner.embedding.state_dict().items()}
    task = batches(seed=6, n=1, size=1)[0][0]
    fitted = learner.fit(task.support_x, task.support_y)
    scores = fitted.scores(task.query_x)
    for batch in batches(seed=7, n=3):
        learner.meta_update(batch)
    assert torch.equal(fitted.scores(task.query_x), scores)
    assert not torch.equal(learner.fit(task.support_x, task.support_y).scores(task.query_x), scores)
    assert same(learner.embedding.state_dict(), module_before)  # the module is never touched


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_scores_and_predict(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    learner.meta_update(batches(seed=8, n=1)[0])
    task = episode(torch.Generator().manual_seed(9), ways=4, shots=2, queries=3)
    fitted = learner.fit(task.support_x, task.support_y)
    assert isinstance(fitted, FittedSupport)
    assert fitted.n_classes == 4
    scores = fitted.scores(task.query_x)
    assert scores.shape == (12, 4) and scores.dtype == torch.float32
    assert torch.equal(fitted.predict(task.query_x), scores.argmax(dim=1))
    # One query alone scores as it does among the others (no statistics across queries).
    torch.testing.assert_close(fitted.scores(task.query_x[:1]), scores[:1])


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_one_shot_works(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    stats = learner.meta_update(batches(seed=10, n=1, shots=1, queries=1)[0])
    assert isinstance(stats, EpisodeStats) and stats.tasks == 4
    task = episode(torch.Generator().manual_seed(11), shots=1, queries=2)
    assert learner.fit(task.support_x, task.support_y).predict(task.query_x).shape == (10,)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_mixed_shapes_in_a_batch_equal_the_episodes_one_by_one(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    g = torch.Generator().manual_seed(12)
    tasks = [episode(g), episode(g, ways=3, shots=2), episode(g), episode(g, shots=1)]
    together = learner.evaluate(tasks)
    alone = [learner.evaluate([t]) for t in tasks]
    assert together.tasks == 4
    assert together.loss == pytest.approx(sum(s.loss for s in alone) / 4, rel=1e-5)
    assert together.accuracy == pytest.approx(sum(s.accuracy for s in alone) / 4)


def _bad_tasks() -> list[tuple[str, Task]]:
    t = episode(torch.Generator().manual_seed(13))
    return [
        ("support_x", t._replace(support_x=t.support_x[:, :5])),
        ("support_x", t._replace(support_x=t.support_x.flatten())),
        ("support_y", t._replace(support_y=t.support_y.float())),
        ("support_y", t._replace(support_y=t.support_y[:-1])),
        ("support_y", t._replace(support_y=torch.where(t.support_y == 2, 0, t.support_y))),
        ("query_x", t._replace(query_x=t.query_x[:, :3])),
        ("query_x", t._replace(query_x=t.query_x * float("nan"))),
        ("query_y", t._replace(query_y=t.query_y + 5)),
        ("query_y", t._replace(query_y=-t.query_y - 1)),
    ]


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_bad_input_is_refused_by_name(name: str, kwargs: dict) -> None:
    learner = make(name, kwargs)
    good = episode(torch.Generator().manual_seed(14))
    with pytest.raises(ValueError, match="tasks"):
        learner.meta_update([])
    for named, bad in _bad_tasks():
        with pytest.raises(ValueError, match=rf"task 1: {named}"):
            learner.meta_update([good, bad])
        with pytest.raises(ValueError, match=named):
            learner.evaluate([bad])
    assert learner.updates == 0 and same(learner.params, make(name, kwargs).params)
    with pytest.raises(ValueError, match="support_y"):
        learner.fit(good.support_x, good.support_y + 1)
    fitted = learner.fit(good.support_x, good.support_y)
    with pytest.raises(ValueError, match="query_x"):
        fitted.scores(good.query_x[:, :4])
    cls = LEARNERS[name]
    for bad_kwargs, named in [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"seed": 1.5}, "seed"),
    ]:
        with pytest.raises(ValueError, match=named):
            cls(Embedding(IN_DIM, (8,)), **bad_kwargs)
    with pytest.raises(ValueError, match="embedding"):
        cls(torch.nn.Linear(IN_DIM, 8))
