from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.learn.continual import data, fashion


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.digits()


def test_every_task_permutes_the_same_images_by_a_bijection(digits: data.Dataset) -> None:
    tasks = data.PermutedTasks(digits, 1000, seed=3)
    originals = digits.pixels(digits.test_x)
    for t in (0, 1, 999):
        perm = tasks.permutation(t)
        assert sorted(perm.tolist()) == list(range(digits.in_dim))  # a bijection of the pixels
        task = tasks[t]
        assert task.id == t and task.classes is None
        assert torch.equal(task.test_x, originals[:, perm])
        assert torch.equal(task.test_y, digits.test_y)
        inverse = torch.argsort(perm)
        assert torch.equal(task.test_x[:, inverse], originals)  # nothing lost or duplicated
    assert not torch.equal(tasks.permutation(0), tasks.permutation(1))
    assert torch.equal(tasks.permutation(5), data.PermutedTasks(digits, 10, seed=3).permutation(5))
    assert not torch.equal(
        tasks.permutation(5), data.PermutedTasks(digits, 10, seed=4).permutation(5)
    )
    assert tasks[-1].id == 999 and [t.id for t in tasks[2:4]] == [2, 3]
    with pytest.raises(IndexError):
        tasks[1000]


def test_subsets_are_seeded_per_task_and_joint_batches_match_the_tasks(
    digits: data.Dataset,
) -> None:
    tasks = data.PermutedTasks(digits, 4, seed=0, train_size=50, test_size=20)
    first, again = tasks[2], tasks[2]
    assert first.train_x.shape == (50, 64) and first.test_x.shape == (20, 64)
    assert torch.equal(first.train_x, again.train_x)
    train0, _ = tasks.indices(0)
    assert not torch.equal(train0, tasks.indices(1)[0])
    assert len(set(train0.tolist())) == 50  # drawn without replacement
    assert tasks.train_examples() == 200
    index = torch.tensor([0, 49, 100, 151, 199])
    x, y = tasks.joint_batch(index)
    expected = [(0, 0), (0, 49), (2, 0), (3, 1), (3, 49)]
    for row, (t, i) in enumerate(expected):
        assert torch.equal(x[row], tasks[t].train_x[i])
        assert int(y[row]) == int(tasks[t].train_y[i])


def test_split_tasks_hold_their_two_classes(digits: data.Dataset) -> None:
    task_il = data.split_tasks(digits, "task")
    class_il = data.split_tasks(digits, "class")
    assert [t.classes for t in task_il] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert all(t.classes is None for t in class_il)
    total = 0
    for t, (a, b) in enumerate(zip(task_il, class_il, strict=True)):
        assert set(a.train_y.tolist()) == {2 * t, 2 * t + 1} == set(a.test_y.tolist())
        assert torch.equal(a.train_x, b.train_x)
        assert float(a.train_x.max()) <= 1.0 and float(a.train_x.min()) >= 0.0
        total += len(a.train_y)
    assert total == len(digits.train_y)
    capped = data.split_tasks(digits, "task", train_size=20, seed=1)
    assert all(len(t.train_y) == 20 for t in capped)
    with pytest.raises(ValueError, match="scenario"):
        data.split_tasks(digits, "domain")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_tasks"):
        data.split_tasks(digits, "task", n_tasks=3)


def test_the_validation_split_uses_training_images_only(digits: data.Dataset) -> None:
    held = digits.validation(0.2, seed=0)
    assert len(held.train_y) + len(held.test_y) == len(digits.train_y)
    rows = {tuple(r) for r in digits.train_x.tolist()}
    assert all(tuple(r) in rows for r in held.test_x.tolist())
    counts = np.bincount(held.test_y.numpy(), minlength=10)
    assert counts.min() >= 25  # stratified: every class held out
    with pytest.raises(ValueError, match="fraction"):
        digits.validation(1.0)


def _idx(path: Path, array: np.ndarray, code: int, *, compress: bool) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def test_idx_files_are_parsed_plain_and_gzipped(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _idx(tmp_path / "a.gz", images, 0x08, compress=True)
    _idx(tmp_path / "b", images, 0x08, compress=False)
    assert np.array_equal(fashion.read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(fashion.read_idx(tmp_path / "b"), images)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    _idx(tmp_path / "c", ints, 0x0C, compress=False)
    assert fashion.read_idx(tmp_path / "c").tolist() == [1, -2, 70000]
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        fashion.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "b").read_bytes()[:-1])
    with pytest.raises(ValueError, match="shape"):
        fashion.read_idx(tmp_path / "short")


def test_fashion_loader_reads_a_directory_of_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, (6, 28, 28)).astype(np.uint8),
        "train_y": np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8),
        "test_x": rng.integers(0, 256, (3, 28, 28)).astype(np.uint8),
        "test_y": np.array([7, 8, 9], dtype=np.uint8),
    }
    with pytest.raises(FileNotFoundError, match=fashion.FASHION_PACKAGE):
        data.fashion_mnist(tmp_path)
    for key, name in fashion.FASHION_FILES.items():
        _idx(tmp_path / name, arrays[key], 0x08, compress=True)
    loaded = data.fashion_mnist(tmp_path)
    assert loaded.in_dim == 784 and loaded.scale == 255.0
    assert torch.equal(loaded.train_x[2], torch.from_numpy(arrays["train_x"][2].reshape(-1)))
    assert loaded.test_y.tolist() == [7, 8, 9]
    assert fashion.ensure_fashion(tmp_path) == "present"
    task = data.PermutedTasks(loaded, 2, seed=0)[1]
    assert task.train_x.shape == (6, 784) and float(task.train_x.max()) <= 1.0


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ValueError, match="name"):
        data.load("cifar")
