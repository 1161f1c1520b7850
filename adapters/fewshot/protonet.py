"""Prototypical networks (Snell, Swersky & Zemel, 2017): a class is the mean of its embeddings.

A query's score for class ``c`` is ``-||f(x) - p_c||²``, the negative squared Euclidean distance
to the prototype ``p_c`` (the mean embedding of the class's support examples); meta-training
minimises the query cross-entropy of these scores (a softmax over negative distances).

``fit`` returns :class:`Prototypes`, which keeps running means, counts and spreads per class, so
it can take new labelled examples (``update``) and new classes without re-embedding the old
ones. With ``embedding=None`` the embedding is the identity: a parameter-free nearest-prototype
classifier on the raw features (``meta_update`` then has nothing to learn; it still evaluates
the batch, returns its ``EpisodeStats`` and counts the update, so training loops run unchanged).

Examples
--------
>>> import torch
>>> from adaptd.adapters.fewshot import Embedding
>>> g = torch.Generator().manual_seed(0)
>>> centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0]])
>>> y = torch.tensor([0, 1, 0, 1])
>>> x = centres[y] + 0.1 * torch.randn(4, 2, generator=g)
>>> protos = ProtoNet().fit(x, y)                    # identity embedding
>>> protos.predict(torch.tensor([[2.5, 0.3], [-2.0, 1.0]])).tolist()
[0, 1]
>>> protos.counts.tolist()
[2, 2]
>>> protos = protos.update(torch.tensor([[0.0, 5.0]]), torch.tensor([2]))  # a new class
>>> protos.n_classes, protos.predict(torch.tensor([[0.5, 4.0]])).tolist()
(3, [2])
>>> learner = ProtoNet(Embedding(2, (8,), batch_norm=False), lr=0.01, seed=0)
>>> from adaptd.adapters.protocol import Task
>>> stats = learner.meta_update([Task(x, y, x, y)])
>>> stats.tasks, learner.updates
(1, 1)

References
----------
Snell, J., Swersky, K. & Zemel, R. (2017). Prototypical networks for few-shot learning. NeurIPS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from .base import MetricLearner, _check_labels, _check_x, _sub, check_support, pool_classes
from .embedding import Embedding

__all__ = ["ProtoNet", "Prototypes"]


class ProtoNet(MetricLearner):
    """Prototypical network.

    Parameters
    ----------
    embedding
        The embedding architecture (never modified), or None for the identity.
    lr
        Adam step size of ``meta_update``.
    seed
        Seed of the initial weights.
    """

    algorithm = "protonet"

    def __init__(
        self, embedding: Embedding | None = None, *, lr: float = 1e-3, seed: int = 0
    ) -> None:
        super().__init__(embedding, lr=lr, seed=seed)

    def fit(self, support_x: Tensor, support_y: Tensor) -> Prototypes:
        """Prototypes of the support set's classes ``0..N-1``; later meta-updates leave them
        unchanged (they keep their own snapshot of the weights)."""
        sx, sy, _ = check_support(support_x, support_y, in_dim=self._in_dim())
        context = sx if self.embedding is not None and self.embedding.batch_norm else None
        return Prototypes(self.embedding, dict(self.params), context).update(sx, sy)

    def _scores(
        self, params: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor, ways: int
    ) -> Tensor:
        support, query = self._embed_episodes(params, sx, qx)
        return -squared_distances(query, pool_classes(support, sy, ways, mean=True))


class Prototypes:
    """Per-class running mean (prototype), count and spread of embedded examples.

    Built by :meth:`ProtoNet.fit`. It holds a snapshot of the weights and, when the embedding
    normalises, the support set whose statistics normalise every later input (so an example
    embeds the same whenever it arrives).

    Parameters
    ----------
    embedding
        The embedding architecture, or None for the identity.
    params
        The embedding's weights under ``"embedding."`` keys (ignored for the identity).
    context
        Rows whose statistics meta-batch normalisation uses, or None without normalisation.
    """

    def __init__(
        self, embedding: Embedding | None, params: dict[str, Tensor], context: Tensor | None
    ) -> None:
        if embedding is not None and embedding.batch_norm and context is None:
            raise ValueError("context is required when the embedding normalises")
        self._embedding = embedding
        self._params = _sub(params, "embedding")
        self._context = context
        self._sum = torch.zeros(0, 0)
        self._counts = torch.zeros(0, dtype=torch.int64)
        self._means = torch.zeros(0, 0)
        self._m2 = torch.zeros(0)
        self._in_dim = None if embedding is None else embedding.in_dim

    @property
    def n_classes(self) -> int:
        """Classes so far; their ids are ``0..n_classes-1``."""
        return len(self._counts)

    @property
    def prototypes(self) -> Tensor:
        """``(n_classes, dim)`` mean embedding per class."""
        return self._means

    @property
    def counts(self) -> Tensor:
        """``(n_classes,)`` examples seen per class."""
        return self._counts

    @property
    def spread(self) -> Tensor:
        """``(n_classes,)`` mean squared distance of a class's examples to its prototype (0 for
        a class with one example)."""
        return self._m2 / self._counts

    def embed(self, x: Tensor) -> Tensor:
        """``(n, dim)`` embeddings of ``x``, normalised with the fitted statistics."""
        return self._embed(x, "x")

    def _embed(self, x: Tensor, name: str) -> Tensor:
        x = _check_x(x, name, self._in_dim)
        if self._embedding is None:
            return x
        with torch.no_grad():
            if self._context is None:
                return functional_call(self._embedding, self._params, (x,), strict=True)
            n = len(self._context)
            both = torch.cat((self._context, x))
            z = functional_call(self._embedding, self._params, (both,), {"n_stats": n}, strict=True)
            return z[n:]

    def distances(self, query_x: Tensor) -> Tensor:
        """``(n_query, n_classes)`` squared Euclidean distances to the prototypes."""
        return squared_distances(self._embed(query_x, "query_x"), self._means)

    def scores(self, query_x: Tensor) -> Tensor:
        """``(n_query, n_classes)`` negative squared distances."""
        return -self.distances(query_x)

    def predict(self, query_x: Tensor) -> Tensor:
        """``(n_query,)`` id of the nearest prototype."""
        return self.distances(query_x).argmin(dim=-1)

    def update(self, x: Tensor, y: Tensor) -> Prototypes:
        """Fold labelled examples into the running statistics; ids ``n_classes, ...`` (all of
        them, in order) add classes. Returns self."""
        z = self.embed(x)
        y = _check_labels(y, "y", len(z))
        ways = max(self.n_classes, int(y.max()) + 1)
        new = set(range(self.n_classes, ways)) - set(y.tolist())
        if new:
            raise ValueError(
                f"y adds classes up to {ways - 1} but lacks {sorted(new)}: new class ids must "
                f"follow {self.n_classes - 1} without gaps"
            )
        onehot = F.one_hot(y, ways).to(z.dtype)  # (m, N)
        m = onehot.sum(dim=0)
        batch_mean = (onehot.T @ z) / m.clamp(min=1).unsqueeze(-1)
        batch_m2 = (onehot * squared_distances(z, batch_mean)).sum(dim=0)
        grow = ways - self.n_classes
        n_a = torch.cat((self._counts.to(z.dtype), z.new_zeros(grow)))
        mean_a = torch.cat((self._means.reshape(-1, z.shape[1]), z.new_zeros(grow, z.shape[1])))
        m2_a = torch.cat((self._m2, z.new_zeros(grow)))
        # Chan et al.'s pairwise merge of (count, mean, M2): exact, and no old example is needed.
        n = n_a + m
        delta = batch_mean - mean_a
        self._means = mean_a + delta * (m / n).unsqueeze(-1)
        self._m2 = m2_a + batch_m2 + (delta**2).sum(dim=-1) * n_a * m / n
        self._counts = torch.cat((self._counts, self._counts.new_zeros(grow))) + m.to(torch.int64)
        self._in_dim = self._in_dim or int(z.shape[1])  # the identity fixes it at the first update
        return self


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """``(..., n, dim), (..., k, dim) -> (..., n, k)`` squared Euclidean distances (computed
    from differences, so a point's distance to itself is exactly 0)."""
    return ((a.unsqueeze(-2) - b.unsqueeze(-3)) ** 2).sum(dim=-1)
