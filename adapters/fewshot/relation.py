"""Relation networks (Sung et al., 2018): a learned module scores query-class pairs.

A class embedding pools its support embeddings (the paper sums the K shots); the relation
module, an MLP, maps the concatenation ``[f(x̂), c_k]`` to a relation score in ``(0, 1)``
through a sigmoid. As in the paper, meta-training regresses the scores on the one-hot query
labels with mean squared error, so ``EpisodeStats.loss`` of this learner is that MSE (not a
cross-entropy). The paper's relation module is convolutional over feature maps; this one is an
MLP over embedding vectors.

Examples
--------
>>> import torch
>>> from adaptd.adapters.fewshot import Embedding
>>> from adaptd.adapters.protocol import Task
>>> g = torch.Generator().manual_seed(0)
>>> centres = 3 * torch.randn(3, 4, generator=g)
>>> def episode():
...     y = torch.arange(3).repeat(4)
...     x = centres[y] + torch.randn(12, 4, generator=g)
...     return Task(x[:6], y[:6], x[6:], y[6:])
>>> learner = RelationNet(Embedding(4, (16,)), hidden=8, lr=0.01, seed=0)
>>> stats = learner.meta_update([episode() for _ in range(4)])
>>> stats.tasks, learner.updates
(4, 1)
>>> task = episode()
>>> scores = learner.fit(task.support_x, task.support_y).scores(task.query_x)
>>> scores.shape, bool(((scores > 0) & (scores < 1)).all())
(torch.Size([6, 3]), True)

References
----------
Sung, F., Yang, Y., Zhang, L., Xiang, T., Torr, P. H. S. & Hospedales, T. M. (2018). Learning
to compare: relation network for few-shot learning. CVPR.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..checks import one_of, positive_int
from .base import MetricLearner, _sub, check_embedding, pool_classes
from .embedding import Embedding

__all__ = ["RelationNet"]

Pooling = Literal["sum", "mean"]
POOLINGS: tuple[Pooling, ...] = ("sum", "mean")


class RelationNet(MetricLearner):
    """Relation network with an MLP relation module and MSE to one-hot targets.

    Parameters
    ----------
    embedding
        The embedding architecture (never modified).
    hidden
        Width of the relation module's hidden layer.
    pooling
        How a class embedding pools its shots: "sum" (the paper) or "mean" (the same scale
        for any K).
    lr
        Adam step size of ``meta_update``.
    seed
        Seed of the initial weights.
    """

    algorithm = "relation"

    def __init__(
        self,
        embedding: Embedding,
        *,
        hidden: int = 32,
        pooling: Pooling = "sum",
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        check_embedding(embedding)
        self.hidden = positive_int("hidden", hidden)
        self.pooling: Pooling = one_of("pooling", pooling, POOLINGS)
        # Built on the meta device: the learner draws the weights from its own seed.
        with torch.device("meta"):
            self._relation = nn.Sequential(
                nn.Linear(2 * embedding.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )
        super().__init__(embedding, lr=lr, seed=seed)

    def _modules(self) -> dict[str, nn.Module]:
        return {**super()._modules(), "relation": self._relation}

    def _scores(
        self, params: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor, ways: int
    ) -> Tensor:
        support, query = self._embed_episodes(params, sx, qx)
        classes = pool_classes(support, sy, ways, mean=self.pooling == "mean")  # (T, N, d)
        t, nq, d = query.shape
        pairs = torch.cat(
            (
                query.unsqueeze(2).expand(t, nq, ways, d),
                classes.unsqueeze(1).expand(t, nq, ways, d),
            ),
            dim=-1,
        )
        logits = functional_call(self._relation, _sub(params, "relation"), (pairs,), strict=True)
        return torch.sigmoid(logits.squeeze(-1))

    def _loss(self, scores: Tensor, qy: Tensor, ways: int) -> Tensor:
        target = F.one_hot(qy, ways).to(scores.dtype)
        return ((scores - target) ** 2).mean(dim=(1, 2))
