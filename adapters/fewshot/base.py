"""What the metric-based learners share: arguments, seeded parameters, the Adam meta-update over
batches of episodes, episode checks, the state dict and a generic fitted support set.

A learner's weights are a dict of tensors (``"embedding.linears.0.weight"``, ``"relation.0.bias"``,
...) evaluated with ``torch.func.functional_call``; the modules are architecture only. An update
rebinds the dict to new tensors and never writes into the old ones, so a dict read earlier (as a
fitted support set holds it) stays a valid snapshot.

Episodes of a batch that have the same shape (support size, query size, ways, width) are stacked
and run as one batched computation; a batch of mixed shapes runs one group per shape.

Examples
--------
>>> import torch
>>> x, y = torch.zeros(4, 3), torch.tensor([0, 1, 1, 0])
>>> check_support(x, y, in_dim=3)[2]
2
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..checks import integer, positive_finite
from ..fast_weights import saved_weights, weights_state
from ..meta.adam import Adam
from ..protocol import EpisodeStats, FittedSupport, Task
from .embedding import Embedding, init_params

__all__ = ["FittedEpisode", "MetricLearner", "check_embedding", "check_support", "pool_classes"]

Group = tuple[Tensor, Tensor, Tensor, Tensor, int]
"""Stacked episodes of one shape: support x ``(T, ns, d)``, support y ``(T, ns)``, query x
``(T, nq, d)``, query y ``(T, nq)``, ways."""


class MetricLearner:
    """Base of ProtoNet, MatchingNet and RelationNet (see those for the parameters)."""

    algorithm: ClassVar[str] = ""
    """Name stored in the state dict, so one learner's state cannot load into another."""

    def __init__(self, embedding: Embedding | None, *, lr: float, seed: int) -> None:
        check_embedding(embedding, optional=True)
        self.embedding = embedding
        self.lr = positive_finite("lr", lr)
        self.seed = integer("seed", seed)
        self._reset()

    def _reset(self) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        self.params: dict[str, Tensor] = {}
        for prefix, module in self._modules().items():
            for name, value in init_params(module, generator).items():
                self.params[f"{prefix}.{name}"] = value
        self._adam = Adam(self.lr)
        self.updates = 0

    # ----- what a learner defines ---------------------------------------------------------

    def _modules(self) -> dict[str, nn.Module]:
        """The learned modules by name prefix; subclasses add theirs."""
        return {} if self.embedding is None else {"embedding": self.embedding}

    def _scores(
        self, params: dict[str, Tensor], sx: Tensor, sy: Tensor, qx: Tensor, ways: int
    ) -> Tensor:
        """``(T, nq, ways)`` scores of stacked episodes; higher means more likely."""
        raise NotImplementedError

    def _loss(self, scores: Tensor, qy: Tensor, ways: int) -> Tensor:
        """``(T,)`` training loss per episode: query cross-entropy of the scores."""
        t, nq = qy.shape
        ce = F.cross_entropy(scores.reshape(t * nq, ways), qy.reshape(-1), reduction="none")
        return ce.view(t, nq).mean(dim=1)

    # ----- shared -------------------------------------------------------------------------

    def meta_update(self, tasks: Sequence[Task]) -> EpisodeStats:
        """One Adam step on the mean query loss of a batch of episodes (classes ``0..N-1``);
        the returned loss and accuracy are those before the step."""
        start = time.perf_counter()
        groups = self._groups(tasks)
        params = {k: v.detach().requires_grad_() for k, v in self.params.items()}
        with torch.enable_grad():
            losses, accuracies = self._run(params, groups)
            total = losses.mean()
        if params:
            grads = torch.autograd.grad(total, list(params.values()))
            self.params = self._adam.step(self.params, dict(zip(params, grads, strict=True)))
        self.updates += 1
        return self._stats(losses, accuracies, start)

    def evaluate(self, tasks: Sequence[Task]) -> EpisodeStats:
        """Query loss and accuracy of a batch of episodes, without learning from them."""
        start = time.perf_counter()
        with torch.no_grad():
            losses, accuracies = self._run(self.params, self._groups(tasks))
        return self._stats(losses, accuracies, start)

    def fit(self, support_x: Tensor, support_y: Tensor) -> FittedSupport:
        """A classifier for the support set's classes ``0..N-1`` (every class present); later
        meta-updates do not change it."""
        sx, sy, ways = check_support(support_x, support_y, in_dim=self._in_dim())
        return FittedEpisode(self, dict(self.params), sx, sy, ways)

    def state_dict(self) -> dict[str, Any]:
        """``{"algorithm", "updates", "params", "adam"}``; all copies."""
        return {
            **weights_state(self.algorithm, self.updates, self.params),
            "adam": self._adam.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output of the same algorithm and architecture."""
        params, updates = saved_weights(state, self.algorithm, self.params)
        adam = Adam(self.lr)
        adam.load_state_dict(state.get("adam", {}))
        if not set(adam.exp_avg) <= set(self.params):
            raise ValueError("state adam moments name parameters the learner does not have")
        self.params, self._adam, self.updates = params, adam, updates

    def _embed(self, params: dict[str, Tensor], x: Tensor, n_stats: int) -> Tensor:
        if self.embedding is None:
            return x
        return functional_call(
            self.embedding, _sub(params, "embedding"), (x,), {"n_stats": n_stats}, strict=True
        )

    def _embed_episodes(
        self, params: dict[str, Tensor], sx: Tensor, qx: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Support and query embeddings ``(T, ns, d)``, ``(T, nq, d)`` of stacked episodes, from
        one pass whose normalisation statistics are the support set's alone, so a query batch
        never changes how the support set embeds."""
        ns = sx.shape[1]
        z = self._embed(params, torch.cat((sx, qx), dim=1), n_stats=ns)
        return z[:, :ns], z[:, ns:]

    def _in_dim(self) -> int | None:
        return None if self.embedding is None else self.embedding.in_dim

    def _run(self, params: dict[str, Tensor], groups: list[Group]) -> tuple[Tensor, Tensor]:
        losses, accuracies = [], []
        for sx, sy, qx, qy, ways in groups:
            scores = self._scores(params, sx, sy, qx, ways)
            losses.append(self._loss(scores, qy, ways))
            accuracies.append((scores.argmax(dim=-1) == qy).float().mean(dim=1))
        return torch.cat(losses), torch.cat(accuracies)

    def _groups(self, tasks: Sequence[Task]) -> list[Group]:
        if isinstance(tasks, Task) or len(tasks) == 0:
            raise ValueError("tasks must be a non-empty sequence of Task episodes")
        by_shape: dict[tuple[int, ...], list[tuple[Tensor, Tensor, Tensor, Tensor]]] = {}
        for i, task in enumerate(tasks):
            sx, sy, ways = check_support(
                task.support_x, task.support_y, in_dim=self._in_dim(), where=f"task {i}: "
            )
            qx, qy = _check_query(task.query_x, task.query_y, sx.shape[1], ways, f"task {i}: ")
            key = (sx.shape[0], qx.shape[0], ways, sx.shape[1])
            by_shape.setdefault(key, []).append((sx, sy, qx, qy))
        return [
            (*(torch.stack(column) for column in zip(*episodes, strict=True)), key[2])
            for key, episodes in by_shape.items()
        ]

    @staticmethod
    def _stats(losses: Tensor, accuracies: Tensor, start: float) -> EpisodeStats:
        return EpisodeStats(
            tasks=len(losses),
            loss=float(losses.detach().mean()),
            accuracy=float(accuracies.mean()),
            seconds=time.perf_counter() - start,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, seed={self.seed}, updates={self.updates})"


class FittedEpisode:
    """A support set and a snapshot of a learner's weights: scores any query batch against the
    support set's classes exactly as meta-training scored an episode's queries."""

    def __init__(
        self, learner: MetricLearner, params: dict[str, Tensor], sx: Tensor, sy: Tensor, ways: int
    ) -> None:
        self._learner = learner
        self._params = params
        self._sx, self._sy = sx, sy
        self.n_classes = ways

    def scores(self, query_x: Tensor) -> Tensor:
        """``(n_query, n_classes)`` scores, higher meaning more likely."""
        qx = _check_x(query_x, "query_x", self._sx.shape[1])
        with torch.no_grad():
            return self._learner._scores(
                self._params, self._sx[None], self._sy[None], qx[None], self.n_classes
            )[0]

    def predict(self, query_x: Tensor) -> Tensor:
        """``(n_query,)`` class ids, the arg-max of ``scores``."""
        return self.scores(query_x).argmax(dim=-1)


def check_embedding(embedding: object, *, optional: bool = False) -> None:
    """ValueError naming ``embedding`` unless it is an :class:`Embedding` (or, with
    ``optional``, None): learners check it before sizing their own modules by it."""
    if not (isinstance(embedding, Embedding) or (optional and embedding is None)):
        allowed = "an Embedding or None" if optional else "an Embedding"
        raise ValueError(f"embedding must be {allowed}, got {embedding!r}")


def pool_classes(support: Tensor, sy: Tensor, ways: int, *, mean: bool) -> Tensor:
    """``(T, ways, d)``: for each episode, the sum of each class's support embeddings
    ``support`` ``(T, ns, d)`` (labels ``sy`` ``(T, ns)``), or their mean with ``mean``.

    >>> support = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]])
    >>> pool_classes(support, torch.tensor([[0, 0, 1]]), 2, mean=True).tolist()
    [[[2.0, 0.0], [0.0, 2.0]]]
    """
    onehot = F.one_hot(sy, ways).to(support.dtype)  # (T, ns, N)
    pooled = onehot.transpose(1, 2) @ support
    return pooled / onehot.sum(dim=1).unsqueeze(-1) if mean else pooled


def check_support(
    support_x: Tensor, support_y: Tensor, *, in_dim: int | None, where: str = ""
) -> tuple[Tensor, Tensor, int]:
    """Validated float32 ``support_x``, int64 ``support_y`` and the number of classes ``N``;
    ``support_y`` must hold every class id ``0..N-1``."""
    sx = _check_x(support_x, f"{where}support_x", in_dim)
    sy = _check_labels(support_y, f"{where}support_y", sx.shape[0])
    ways = int(sy.max()) + 1
    missing = (torch.bincount(sy, minlength=ways) == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"{where}support_y must hold every class id 0..{ways - 1}, lacks {missing}"
        )
    return sx, sy, ways


def _check_query(
    query_x: Tensor, query_y: Tensor, in_dim: int, ways: int, where: str
) -> tuple[Tensor, Tensor]:
    qx = _check_x(query_x, f"{where}query_x", in_dim)
    qy = _check_labels(query_y, f"{where}query_y", qx.shape[0])
    if int(qy.max()) >= ways:
        raise ValueError(f"{where}query_y has class id {int(qy.max())}, support has 0..{ways - 1}")
    return qx, qy


def _check_x(x: Tensor, name: str, in_dim: int | None) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[0] < 1 or (in_dim is not None and x.shape[1] != in_dim):
        width = "d" if in_dim is None else in_dim
        raise ValueError(f"{name} must have shape (n >= 1, {width}), got {tuple(x.shape)}")
    if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must hold finite floats")
    return x.to(torch.float32)


def _check_labels(y: Tensor, name: str, n: int) -> Tensor:
    y = torch.as_tensor(y)
    if tuple(y.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(y.shape)}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    if int(y.min()) < 0:
        raise ValueError(f"{name} has negative class id {int(y.min())}")
    return y.to(torch.int64)


def _sub(params: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of one module, with the module prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in params.items() if k.startswith(prefix + ".")}
