"""Data of the continual-learning benchmarks: permuted and split digits and Fashion-MNIST.

Two image data sets, both without download:

- scikit-learn's bundled ``load_digits`` (1797 images 8x8, pixels ``0..16``), cut once into a
  fixed, class-stratified train/test split (80 / 20 %, seed 0): 1438 / 359 images;
- Fashion-MNIST (Xiao et al., 2017) from Debian's ``dataset-fashion-mnist`` package (idx files
  in ``/usr/share/datasets/fashion-mnist``; 60,000 / 10,000 images 28x28, pixels ``0..255``;
  :mod:`.fashion` reads them and installs the package when it can); when they are missing,
  :func:`fashion_mnist` raises ``FileNotFoundError`` with the reason, which the sections
  record as ``"available": false``.

Images stay ``uint8`` in a :class:`Dataset` (Fashion-MNIST's 60,000 images are 47 MB so, 188 MB
as floats) and are scaled to ``[0, 1]`` when a task is built. A task sequence is lazy
(:class:`PermutedTasks` builds task ``t`` when it is indexed), so 1000 tasks never sit in
memory: task ``t`` applies a pixel permutation drawn from ``(seed, t)`` to every image of its
(optionally seeded-subsampled) train and test sets. :func:`split_tasks` cuts a data set into 5
tasks of 2 classes, task-incremental (``classes=(2t, 2t+1)``) or class-incremental
(``classes=None``: one 10-way head). :meth:`Dataset.validation` holds out part of the training
images as a validation "test" set: every hyperparameter is chosen on it, never on test images.

Examples
--------
>>> data = digits()
>>> len(data.train_y), len(data.test_y), data.in_dim
(1438, 359, 64)
>>> tasks = PermutedTasks(data, 3, seed=0)
>>> len(tasks), tasks[1].train_x.shape, float(tasks[1].train_x.max())
(3, torch.Size([1438, 64]), 1.0)
>>> sorted(tasks.permutation(1).tolist()) == list(range(64))
True
>>> [task.classes for task in split_tasks(data, "task")][:2]
[(0, 1), (2, 3)]
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple, overload

import numpy as np
import torch
from torch import Tensor

from adaptd.adapters.checks import is_int, positive_int
from adaptd.adapters.continual import ContinualTask
from adaptd.adapters.continual.seeds import derive_seed

from .fashion import FASHION_DIR, read_fashion

__all__ = [
    "DATASETS",
    "Dataset",
    "PermutedTasks",
    "digits",
    "fashion_mnist",
    "load",
    "split_tasks",
]

DATASETS = ("digits", "fashion_mnist")


class Dataset(NamedTuple):
    """Flattened images (``uint8``, ``(n, in_dim)``) and labels (``int64``) of one data set."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    scale: float
    """The largest pixel value: images are divided by it when a task is built."""

    @property
    def in_dim(self) -> int:
        """Pixels per image."""
        return int(self.train_x.shape[1])

    def validation(self, fraction: float = 0.2, seed: int = 0) -> Dataset:
        """The training images cut in two: the rest to train on, ``fraction`` (stratified by
        class, seeded) as the "test" set. No test image is in it."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
        held, kept = _stratified(self.train_y.numpy(), fraction, seed)
        return Dataset(
            f"{self.name}/validation",
            self.train_x[kept],
            self.train_y[kept],
            self.train_x[held],
            self.train_y[held],
            self.scale,
        )

    def pixels(self, x: Tensor) -> Tensor:
        """``x`` as floats in ``[0, 1]``."""
        return x.to(torch.float32) / self.scale


def digits() -> Dataset:
    """scikit-learn's digits with the fixed stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits  # optional dependency, bundled data file

    bunch = load_digits()
    x = torch.from_numpy(bunch.data.astype(np.uint8))
    y = torch.from_numpy(bunch.target.astype(np.int64))
    test, train = _stratified(bunch.target, 0.2, 0)
    return Dataset("digits", x[train], y[train], x[test], y[test], 16.0)


@functools.cache
def load(name: str) -> Dataset:
    """One of :data:`DATASETS`, read once per process (the sections' workers share nothing)."""
    if name == "digits":
        return digits()
    if name == "fashion_mnist":
        return fashion_mnist()
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")


def fashion_mnist(directory: Path | str = FASHION_DIR) -> Dataset:
    """Fashion-MNIST from the idx files in ``directory`` (:func:`.fashion.read_fashion`);
    ``FileNotFoundError`` naming the missing files and the package when they are not there."""
    arrays = read_fashion(directory)
    return Dataset(
        "fashion_mnist",
        torch.from_numpy(arrays["train_x"].reshape(len(arrays["train_x"]), -1).astype(np.uint8)),
        torch.from_numpy(arrays["train_y"].astype(np.int64)),
        torch.from_numpy(arrays["test_x"].reshape(len(arrays["test_x"]), -1).astype(np.uint8)),
        torch.from_numpy(arrays["test_y"].astype(np.int64)),
        255.0,
    )


class PermutedTasks(Sequence[ContinualTask]):
    """``n_tasks`` permuted versions of ``data``, built on demand.

    Parameters
    ----------
    data
        The images.
    n_tasks
        Tasks in the sequence.
    seed
        Seeds the permutations and subsets: task ``t`` uses ``derive_seed(seed, t)``.
    train_size, test_size
        Images per task, a seeded subset of the data's train (test) set drawn per task;
        None for all of them.
    """

    def __init__(
        self,
        data: Dataset,
        n_tasks: int,
        *,
        seed: int = 0,
        train_size: int | None = None,
        test_size: int | None = None,
    ) -> None:
        positive_int("n_tasks", n_tasks)
        for name, size, total in (
            ("train_size", train_size, len(data.train_y)),
            ("test_size", test_size, len(data.test_y)),
        ):
            if size is not None and not 1 <= size <= total:
                raise ValueError(f"{name} must be in [1, {total}] or None, got {size!r}")
        self.data = data
        self.n_tasks = n_tasks
        self.seed = seed
        self.train_size = train_size
        self.test_size = test_size
        self._rows: Tensor | None = None
        self._perms: Tensor | None = None

    def __len__(self) -> int:
        return self.n_tasks

    @overload
    def __getitem__(self, index: int) -> ContinualTask: ...
    @overload
    def __getitem__(self, index: slice) -> list[ContinualTask]: ...
    def __getitem__(self, index: int | slice) -> ContinualTask | list[ContinualTask]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n_tasks))]
        t = index + self.n_tasks if index < 0 else index
        if not 0 <= t < self.n_tasks:
            raise IndexError(f"task {index} out of range for {self.n_tasks} tasks")
        perm = self.permutation(t)
        train, test = self.indices(t)
        d = self.data
        # Rows, then floats, then columns: selecting columns of uint8 images is 4x slower.
        return ContinualTask(
            t,
            d.pixels(d.train_x.index_select(0, train)).index_select(1, perm),
            d.train_y.index_select(0, train),
            d.pixels(d.test_x.index_select(0, test)).index_select(1, perm),
            d.test_y.index_select(0, test),
        )

    def __iter__(self) -> Iterator[ContinualTask]:
        return (self[t] for t in range(self.n_tasks))

    def _generator(self, t: int, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self.seed, t) * 3 + stream)

    def permutation(self, t: int) -> Tensor:
        """Task ``t``'s pixel permutation: pixel ``i`` of its images is pixel ``perm[i]`` of
        the original."""
        return torch.randperm(self.data.in_dim, generator=self._generator(t, 0))

    def train_examples(self) -> int:
        """Training examples of the whole sequence (what joint training mixes)."""
        return self.n_tasks * (self.train_size or len(self.data.train_y))

    def joint_batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of training examples ``index`` of the whole sequence, example ``i``
        being example ``i % n`` of task ``i // n`` (``n`` per task), without building tasks."""
        if self._rows is None:  # one row list and permutation a task, built on first use
            rows = [self.indices(t)[0] for t in range(self.n_tasks)]
            perms = [self.permutation(t) for t in range(self.n_tasks)]
            self._rows, self._perms = torch.stack(rows), torch.stack(perms)
        assert self._perms is not None
        per_task = self._rows.shape[1]
        task, position = index // per_task, index % per_task
        rows = self._rows[task, position]
        x = self.data.pixels(self.data.train_x.index_select(0, rows)).gather(1, self._perms[task])
        return x, self.data.train_y.index_select(0, rows)

    def indices(self, t: int) -> tuple[Tensor, Tensor]:
        """Rows of the data's train and test sets that task ``t`` uses."""
        out = []
        for stream, size, total in (
            (1, self.train_size, len(self.data.train_y)),
            (2, self.test_size, len(self.data.test_y)),
        ):
            if size is None:
                out.append(torch.arange(total))
            else:
                out.append(torch.randperm(total, generator=self._generator(t, stream))[:size])
        return out[0], out[1]


def split_tasks(
    data: Dataset,
    scenario: Literal["task", "class"],
    *,
    n_tasks: int = 5,
    train_size: int | None = None,
    seed: int = 0,
) -> list[ContinualTask]:
    """``data`` cut into ``n_tasks`` tasks of ``10 / n_tasks`` consecutive classes each.

    ``scenario`` "task" gives each task its classes (task-incremental: the task identity picks
    the outputs); "class" gives none (class-incremental: one head over every class). Labels
    keep their original values. ``train_size`` caps the training images per task (a seeded
    subset).
    """
    if scenario not in ("task", "class"):
        raise ValueError(f"scenario must be 'task' or 'class', got {scenario!r}")
    classes = sorted(set(data.train_y.tolist()))
    if not is_int(n_tasks) or n_tasks < 1 or len(classes) % n_tasks:
        raise ValueError(f"n_tasks must divide the {len(classes)} classes, got {n_tasks!r}")
    width = len(classes) // n_tasks
    tasks = []
    for t in range(n_tasks):
        own = tuple(classes[t * width : (t + 1) * width])
        train = torch.nonzero(torch.isin(data.train_y, torch.tensor(own))).squeeze(1)
        test = torch.nonzero(torch.isin(data.test_y, torch.tensor(own))).squeeze(1)
        if train_size is not None and train_size < len(train):
            generator = torch.Generator().manual_seed(derive_seed(seed, t))
            train = train[torch.randperm(len(train), generator=generator)[:train_size]]
        tasks.append(
            ContinualTask(
                t,
                data.pixels(data.train_x[train]),
                data.train_y[train],
                data.pixels(data.test_x[test]),
                data.test_y[test],
                own if scenario == "task" else None,
            )
        )
    return tasks


def _stratified(labels: np.ndarray, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """``(held, kept)`` row indices: ``fraction`` of every class held out, seeded, sorted."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        held.append(rows[: round(fraction * len(rows))])
    mask = np.zeros(len(labels), dtype=bool)
    mask[np.concatenate(held)] = True
    return torch.from_numpy(np.flatnonzero(mask)), torch.from_numpy(np.flatnonzero(~mask))
