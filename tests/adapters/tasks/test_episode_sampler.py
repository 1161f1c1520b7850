"""EpisodeSampler: N-way K-shot episodes from the allowed classes only, seeded, relabelled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptd.adapters.tasks import EpisodeSampler, split_classes

N_CLASSES, PER_CLASS = 12, 8


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    # Feature 0 is the original class, feature 1 a unique example id: both recoverable.
    y = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    x = np.stack((y, np.arange(len(y))), axis=1).astype(np.float32)
    return x, y


def test_shapes_labels_and_class_membership(data) -> None:
    x, y = data
    allowed = (1, 3, 4, 7, 9, 10)
    sampler = EpisodeSampler(x, y, allowed, n_way=5, k_shot=2, n_query=3, seed=0)
    for task in sampler.sample(50):
        assert task.support_x.shape == (10, 2) and task.query_x.shape == (15, 2)
        assert task.support_y.dtype == task.query_y.dtype == torch.int64
        assert torch.bincount(task.support_y).tolist() == [2] * 5
        assert torch.bincount(task.query_y).tolist() == [3] * 5
        originals = set(task.support_x[:, 0].int().tolist())
        assert originals <= set(allowed) and len(originals) == 5
        # Each episode label maps to exactly one original class, the same in support and query.
        for label in range(5):
            s = set(task.support_x[task.support_y == label, 0].int().tolist())
            q = set(task.query_x[task.query_y == label, 0].int().tolist())
            assert len(s) == 1 and s == q
        ids = torch.cat((task.support_x[:, 1], task.query_x[:, 1])).int().tolist()
        assert len(set(ids)) == len(ids)  # support and query never share an example


def test_labels_are_remapped_in_random_order_and_sets_are_shuffled(data) -> None:
    x, y = data
    sampler = EpisodeSampler(x, y, range(N_CLASSES), n_way=3, k_shot=2, n_query=2, seed=1)
    mappings, grouped = set(), 0
    for task in sampler.sample(40):
        order = [int(task.support_x[task.support_y == j, 0][0]) for j in range(3)]
        mappings.add(tuple(order))
        grouped += task.support_y.tolist() == sorted(task.support_y.tolist())
    assert any(list(m) != sorted(m) for m in mappings)  # label 0 is not always the smallest
    assert grouped < 40


def test_seeding(data) -> None:
    x, y = data

    def episodes(seed: int):
        return EpisodeSampler(x, y, range(6), n_way=3, k_shot=1, n_query=2, seed=seed).sample(5)

    a, b, c = episodes(7), episodes(7), episodes(8)
    assert all(
        torch.equal(p, q) for ta, tb in zip(a, b, strict=True) for p, q in zip(ta, tb, strict=True)
    )
    assert any(not torch.equal(ta.query_x, tc.query_x) for ta, tc in zip(a, c, strict=True))


def test_refuses_classes_with_too_few_examples_by_name(data) -> None:
    x, y = data
    keep = (y != 5) | (np.arange(len(y)) % PER_CLASS < 3)  # class 5 keeps 3 examples
    with pytest.raises(ValueError, match=r"classes \[5\]"):
        EpisodeSampler(x[keep], y[keep], range(8), n_way=2, k_shot=2, n_query=2)
    EpisodeSampler(x[keep], y[keep], [0, 1], n_way=2, k_shot=2, n_query=2)  # 5 not asked for
    with pytest.raises(ValueError, match=r"classes \[20\]"):
        EpisodeSampler(x, y, [0, 1, 20], n_way=2, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="n_way"):
        EpisodeSampler(x, y, [0, 1], n_way=3, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="k_shot"):
        EpisodeSampler(x, y, [0, 1], n_way=2, k_shot=0, n_query=1)
    with pytest.raises(ValueError, match="batch"):
        EpisodeSampler(x, y, [0, 1], n_way=2, k_shot=1, n_query=1).sample(0)


def test_split_classes_is_disjoint_seeded_and_checked() -> None:
    labels = np.repeat(np.arange(40), 3)
    train, val, test = split_classes(labels, 20, 5, 15, seed=0)
    assert (len(train), len(val), len(test)) == (20, 5, 15)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert set(train) | set(val) | set(test) == set(range(40))
    assert split_classes(labels, 20, 5, 15, seed=0) == (train, val, test)
    assert split_classes(labels, 20, 5, 15, seed=1) != (train, val, test)
    with pytest.raises(ValueError, match="exceeds the 40 distinct classes"):
        split_classes(labels, 30, 5, 15)
