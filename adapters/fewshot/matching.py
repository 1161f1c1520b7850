"""Matching networks (Vinyals et al., 2016): attention over the support set.

A query attends to every support example with a softmax over cosine similarities of their
embeddings, ``a(x̂, x_i) = softmax_i(scale · cos(f(x̂), g(x_i)))``, and a class's probability is
the attention summed over its examples. Scores are the log of these probabilities; meta-training
minimises their query cross-entropy. ``scale`` 1 is the paper's plain softmax over cosines.

With ``fce=True`` the support embeddings get full context: ``g(x_i, S) = h→_i + h←_i + g'(x_i)``,
a bidirectional LSTM read over the support set (in the order given) with a skip connection, as
the paper's ``g``. The paper's attention-LSTM ``f`` for the query embedding is not implemented:
queries use the plain embedding ``f = g'``.

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
>>> learner = MatchingNet(Embedding(4, (16,)), fce=True, lr=0.01, seed=0)
>>> stats = learner.meta_update([episode() for _ in range(4)])
>>> stats.tasks, learner.updates
(4, 1)
>>> task = episode()
>>> fitted = learner.fit(task.support_x, task.support_y)
>>> fitted.scores(task.query_x).exp().sum(dim=1)      # class probabilities
tensor([1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 1.0000])
>>> fitted.attention(task.query_x).shape
torch.Size([6, 6])

References
----------
Vinyals, O., Blundell, C., Lillicrap, T., Kavukcuoglu, K. & Wierstra, D. (2016). Matching
networks for one shot learning. NeurIPS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..checks import positive_finite
from .base import FittedEpisode, MetricLearner, _check_x, _sub, check_embedding, check_support
from .embedding import Embedding

__all__ = ["MatchingNet", "MatchingSupport"]


class MatchingNet(MetricLearner):
    """Matching network with cosine attention and optional full-context support embeddings.

    Parameters
    ----------
    embedding
        The embedding architecture ``g'`` (never modified).
    fce
        Full-context embeddings of the support set with a bidirectional LSTM.
    scale
        Multiplies the cosine similarities before the softmax (an inverse temperature).
    lr
        Adam step size of ``meta_update``.
    seed
        Seed of the initial weights.
    """

    algorithm = "matching"

    def __init__(
        self,
        embedding: Embedding,
        *,
        fce: bool = False,
        scale: float = 1.0,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        check_embedding(embedding)
        positive_finite("scale", scale)
        self.fce = bool(fce)
        self.scale = float(scale)
        d = embedding.out_dim
        # Built on the meta device: the learner draws the weights from its own seed.
        with torch.device("meta"):
            self._lstm = nn.LSTM(d, d, batch_first=True, bidirectional=True) if self.fce else None
        super().__init__(embedding, lr=lr, seed=seed)

    def fit(self, support_x: Tensor, support_y: Tensor) -> MatchingSupport:
        """The attention classifier of this support set (a frozen snapshot)."""
        sx, sy, ways = check_support(support_x, support_y, in_dim=self._in_dim())
        return MatchingSupport(self, dict(self.params), sx, sy, ways)

    def _modules(self) -> dict[str, nn.Module]:
        modules = super()._modules()
        if self._lstm is not None:
            modules["fce"] = self._lstm
        return modules

    def _attention_logits(self, params: dict[str, Tensor], sx: Tensor, qx: Tensor) -> Tensor:
        """``(T, nq, ns)`` scaled cosine similarities between queries and support examples."""
        support, query = self._embed_episodes(params, sx, qx)
        if self._lstm is not None:
            both, _ = functional_call(self._lstm, _sub(params, "fce"), (support,), strict=True)
            d = support.shape[-1]
            support = both[..., :d] + both[..., d:] + support
        cosine = F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).transpose(1, 2)
        return self.scale * cosine

    def _scores(
        self, params: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor, ways: int
    ) -> Tensor:
        log_attention = torch.log_softmax(self._attention_logits(params, sx, qx), dim=-1)
        # log of the attention summed per class: a log-sum-exp over the class's members,
        # the others masked with log 0 = -inf (every class has a member, so no row is all -inf).
        member = torch.log(F.one_hot(sy, ways).to(log_attention.dtype))  # (T, ns, N)
        return torch.logsumexp(log_attention.unsqueeze(-1) + member.unsqueeze(1), dim=2)


class MatchingSupport(FittedEpisode):
    """A support set with a snapshot of a :class:`MatchingNet`'s weights; ``scores`` are log
    class probabilities."""

    def attention(self, query_x: Tensor) -> Tensor:
        """``(n_query, n_support)`` attention of each query over the support examples (rows
        sum to 1)."""
        learner = self._learner
        assert isinstance(learner, MatchingNet)
        qx = _check_x(query_x, "query_x", self._sx.shape[1])
        with torch.no_grad():
            logits = learner._attention_logits(self._params, self._sx[None], qx[None])[0]
        return torch.softmax(logits, dim=-1)
