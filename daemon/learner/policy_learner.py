"""Few-shot adaptation and meta-training as jobs for the torch worker thread.

``PolicyLearner`` owns the policy network and the meta-learner (Reptile or first-order
MAML from ``adaptd.adapters``). Every method runs on the worker thread only, so the
meta-learned initialisation is never read while it is being updated.

Adaptation starts from the current meta-learned initialisation (or a returning regime's
last policy), takes ``inner_steps`` fast-weight steps on the support examples under a
deadline, and is gated on the held-out query examples: it is published only if its query
loss beats the stream's current policy (or the initialisation, for a stream without one) by
more than min_improvement.

Forgetting prevention (``continual`` settings, :mod:`adaptd.daemon.learner.protection`): online EWC
regularises meta-training and the adaptation of a returning regime, ``consolidate`` updates
its Fisher after each meta round, and ``evaluate`` measures the few-shot query loss of
held-out episodes for the retention metrics. The checkpoint (``state_bytes``) holds the
meta-learner's state and the penalty's: ``{"format": 2, "learner": ..., "protection": ...}``;
a checkpoint from before (the meta-learner's state dict alone) still loads, with the penalty
starting afresh.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from adaptd.adapters import PolicyNet, Task, init_params
from adaptd.adapters.fast_weights import adapt, mse
from adaptd.adapters.meta import ANIL, FOMAML, MAML, MetaSGD, Reptile
from adaptd.adapters.meta.batched import adapted_query_losses, stack_tasks
from adaptd.adapters.protocol import MetaLearner, Regularizer
from adaptd.replay.episode import Episode

from ..config.settings import AdaptationSettings, ContinualSettings
from ..core.detection import Shift
from ..core.effects import AdaptationRequest, ShiftEvent
from .messages import (
    ACTIVATION,
    OUTPUT_SCALE,
    AdaptationOutcome,
    Described,
    MetaRound,
)
from .protection import Protection

CHECKPOINT_FORMAT = 2
"""Version of ``state_bytes``: 2 holds the learner and the penalty; 1 (no ``format`` key)
was the learner's state dict alone."""

LEARNERS: dict[str, type[MetaLearner]] = {
    cls.algorithm: cls for cls in (MAML, FOMAML, Reptile, MetaSGD, ANIL)
}
"""``adaptation.meta_algorithm`` values and their classes."""


def make_learner(
    settings: AdaptationSettings, net: PolicyNet, regularizer: Regularizer | None = None
) -> MetaLearner:
    """The meta-learner named by ``adaptation.meta_algorithm``, with the daemon's settings and
    ``regularizer`` (the protection's penalty on the initialisation, if any)."""
    cls = LEARNERS[settings.meta_algorithm]
    # Reptile's outer step is an interpolation factor; the others take an Adam step size.
    meta_lr = settings.meta_lr if cls is Reptile else settings.adam_lr
    return cls(
        net,
        inner_steps=settings.inner_steps,
        inner_lr=settings.inner_lr,
        meta_lr=meta_lr,
        backend=settings.backend,
        seed=settings.seed,
        regularizer=regularizer,
    )


def _tensors(params: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in params.items()}


def _numpy(params: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32, copy=True) for k, v in params.items()}


def passes_gate(
    loss_current: np.ndarray, loss_adapted: np.ndarray, min_improvement: float, z: float
) -> bool:
    """The publication gate: the adapted policy's mean query loss must undercut the current
    policy's by more than ``min_improvement`` plus ``z`` standard errors of the paired
    per-example difference. The query examples were not seen by the adaptation.

    >>> passes_gate(np.array([1.0, 1.2, 0.9]), np.array([0.5, 0.7, 0.4]), 0.0, 1.0)
    True
    >>> passes_gate(np.array([1.0, 0.2, 0.9]), np.array([0.5, 0.9, 0.4]), 0.0, 1.0)
    False
    """
    diff = np.asarray(loss_current, dtype=np.float64) - np.asarray(loss_adapted, np.float64)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()) > min_improvement + z * se


def episode_task(episode: Episode, query_size: int) -> Task | None:
    """Split an episode in time: earlier rows support, the latest rows query."""
    x, y = episode.arrays()
    n = len(y)
    if n < 2:
        return None
    q = min(query_size, max(1, n // 4))
    # Episode arrays are read-only views of the stored bytes; torch wants its own copy.
    xt, yt = torch.tensor(x), torch.tensor(y)
    return Task(xt[:-q], yt[:-q], xt[-q:], yt[-q:])


class PolicyLearner(Described):
    """The policy network, its meta-learned initialisation, and the jobs that use them."""

    def __init__(
        self,
        settings: AdaptationSettings,
        in_dim: int,
        continual: ContinualSettings | None = None,
    ) -> None:
        self.settings = settings
        self.in_dim = in_dim
        self.continual = continual if continual is not None else ContinualSettings()
        self.net = PolicyNet(
            in_dim, settings.hidden, activation=ACTIVATION, output_scale=OUTPUT_SCALE
        )
        self.protection = Protection(self.continual, self.net, seed=settings.seed)
        self.learner = make_learner(settings, self.net, self.protection.regularizer)
        # The from-scratch baseline: the same inner loop from an initialisation that was
        # never meta-trained, so reports can show what meta-learning adds.
        self.scratch = init_params(self.net, settings.seed + 1)

    @property
    def meta_updates(self) -> int:
        return int(self.learner.updates)

    def warm_up(self) -> None:
        """Run each code path once on throwaway data and a throwaway learner, so the first
        real adaptation does not pay for torch's lazy set-up (vmap, autograd kernels)."""
        gen = torch.Generator().manual_seed(0)
        k, q = self.settings.shots - self.settings.query_size, self.settings.query_size
        task = Task(
            torch.randn(k, self.in_dim, generator=gen),
            torch.randn(k, generator=gen),
            torch.randn(q, self.in_dim, generator=gen),
            torch.randn(q, generator=gen),
        )
        # The penalised paths too: a throwaway penalty with a Fisher, a warm-started adapt.
        guard = Protection(self.continual, self.net)
        spare = make_learner(self.settings, self.net, guard.regularizer)
        spare.meta_update([task, task])
        if guard.consolidate(spare.params, task.support_x, task.support_y):
            spare.meta_update([task, task])
            guard.adapt(spare, task.support_x, task.support_y, start=spare.params, deadline_s=10.0)
        shift = ShiftEvent("warm-up", "warm-up", Shift(0, 0, (), {}), 1, "", 0, 0, 0, 0.0)
        request = AdaptationRequest(
            id="warm-up",
            stream="warm-up",
            shift=shift,
            support_x=task.support_x.numpy(),
            support_y=task.support_y.numpy(),
            query_x=task.query_x.numpy(),
            query_y=task.query_y.numpy(),
            parent_version=0,
            parent_weights=self.init_numpy(),
            first_offset=0,
            last_offset=0,
            ready_wall_time=time.time(),
        )
        self.adapt(request, deadline_s=10.0)  # pure: the learner's state is unchanged

    def meta_update_count(self) -> int:
        """``meta_updates`` as a method, for callers in another process."""
        return self.meta_updates

    def init_numpy(self) -> dict[str, np.ndarray]:
        return _numpy(self.learner.params)

    def adapt(self, request: AdaptationRequest, deadline_s: float) -> AdaptationOutcome:
        """Adapt to the request's support set and gate on its query set (worker thread)."""
        queued_s = time.time() - request.ready_wall_time
        start = time.perf_counter()
        sx, sy = torch.from_numpy(request.support_x), torch.from_numpy(request.support_y)
        qx, qy = torch.from_numpy(request.query_x), torch.from_numpy(request.query_y)
        # A returning regime continues from what was learned for it.
        origin = None if request.start_weights is None else _tensors(request.start_weights)
        result = self.protection.adapt(
            self.learner, sx, sy, start=origin, deadline_s=max(deadline_s, 0.0)
        )
        parent = (
            _tensors(request.parent_weights)
            if request.parent_weights is not None
            else self.learner.params
        )
        with torch.no_grad():
            loss_parent = (functional_call(self.net, parent, (qx,)) - qy) ** 2
            loss_adapted = (functional_call(self.net, result.params, (qx,)) - qy) ** 2
        before, after = float(loss_parent.mean()), float(loss_adapted.mean())
        publish = passes_gate(
            loss_parent.numpy(),
            loss_adapted.numpy(),
            self.settings.min_improvement,
            self.settings.gate_z,
        )
        seconds = time.perf_counter() - start
        # Not part of the latency: the baseline only feeds reports.
        scratch = adapt(
            self.net,
            self.scratch,
            sx,
            sy,
            steps=self.settings.inner_steps,
            lr=self.settings.inner_lr,
            backend=self.settings.backend,
        )
        with torch.no_grad():
            from_scratch = float(mse(self.net, scratch.params, qx, qy))
        return AdaptationOutcome(
            request_id=request.id,
            publish=publish,
            weights=_numpy(result.params),
            query_loss_before=before,
            query_loss_after=after,
            query_loss_scratch=from_scratch,
            support_loss_before=result.losses[0] if result.losses else float("nan"),
            support_loss_after=result.losses[-1] if result.losses else float("nan"),
            steps=result.steps,
            deadline_hit=result.deadline_hit,
            seconds=seconds,
            meta_updates=self.meta_updates,
            queued_s=queued_s,
        )

    def meta_train(self, episodes: Sequence[Episode]) -> MetaRound | None:
        """One meta-update from replayed episodes (worker thread)."""
        tasks = [t for e in episodes if (t := episode_task(e, self.settings.query_size))]
        if not tasks:
            return None
        before = self.learner.state_dict()
        stats = self.learner.meta_update(tasks)
        if not all(bool(torch.isfinite(v).all()) for v in self.learner.params.values()):
            # Never serve a broken initialisation: undo, and let the round count an error.
            self.learner.load_state_dict(before)
            raise FloatingPointError("a meta-update made the initialisation non-finite; undone")
        return MetaRound(
            tasks=stats.tasks,
            query_loss_before=stats.query_loss_before,
            query_loss_after=stats.query_loss_after,
            seconds=stats.seconds,
            meta_updates=self.meta_updates,
            init=self.init_numpy(),
        )

    def consolidate(self, episodes: Sequence[Episode]) -> int:
        """Fold the Fisher of the episodes' examples at the current initialisation into the
        penalty and anchor it there (worker thread); the consolidations made so far."""
        arrays = [e.arrays() for e in episodes]
        if arrays:
            x = torch.tensor(np.concatenate([a[0] for a in arrays]))
            y = torch.tensor(np.concatenate([a[1] for a in arrays]))
            self.protection.consolidate(self.learner.params, x, y)
        return self.protection.consolidations

    def evaluate(self, episodes: Sequence[Episode]) -> list[float]:
        """Each episode's few-shot query loss from the current initialisation: the learner's
        inner loop on the episode's support part, MSE on its query part (``episode_task``);
        NaN for an episode too short to split (worker thread)."""
        tasks = [episode_task(e, self.settings.query_size) for e in episodes]
        usable = [t for t in tasks if t is not None]
        if not usable:
            return [math.nan] * len(tasks)
        theta = {k: v.detach().requires_grad_() for k, v in self.learner.params.items()}
        with torch.enable_grad():
            losses = adapted_query_losses(
                self.net,
                theta,
                stack_tasks([t.support_x for t in usable], [t.support_y for t in usable]),
                stack_tasks([t.query_x for t in usable], [t.query_y for t in usable]),
                steps=self.settings.inner_steps,
                lr=self.learner.step_sizes(),
                loss="mse",
                backend=self.settings.backend,
                names=self.learner.inner_names,
            )
        found = iter(losses.detach().tolist())
        return [math.nan if t is None else next(found) for t in tasks]

    def state_bytes(self) -> bytes:
        """The checkpoint: the meta-learner's state and the penalty's (format 2)."""
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "learner": self.learner.state_dict(),
            "protection": self.protection.state_dict(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Restore ``state_bytes`` output, or a format-1 checkpoint (the learner's state
        alone; the penalty then starts afresh)."""
        state = torch.load(io.BytesIO(data), weights_only=True)
        if "format" not in state:
            self.learner.load_state_dict(state)
            self.protection.load_state_dict(None)
            return
        if state["format"] != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state['format']!r} is not {CHECKPOINT_FORMAT}")
        self.learner.load_state_dict(state["learner"])
        self.protection.load_state_dict(state.get("protection"))
