"""One policy task's learner: its network, meta-learned initialisation, and the jobs that use
them. Every method runs on the learner's one thread, so the initialisation is never read while
it is being updated.

Adaptation starts from the current meta-learned initialisation (or a returning regime's last
policy), takes ``inner_steps`` fast-weight steps on the support examples under a deadline, and
is gated on the held-out query examples (:func:`adaptd.daemon.core.gate.passes_gate`): it is
published only if its query loss beats the stream's current policy (or the initialisation, for
a stream without one).

With ``adaptation.trust_region`` set, the adapted weights stay within that distance of the
parent's, relative to the parent's norm (:mod:`.trust_region`: the start and every inner step
are projected onto the ball), unless the parent does not beat its task's constant baseline on
the query set. The outcome says how far the update moved and whether the bound was active.

Forgetting prevention (``continual`` settings, :mod:`.protection`): online EWC regularises
meta-training and the adaptation of a returning regime, ``consolidate`` updates its Fisher
after each meta round, and ``evaluate`` measures the few-shot query loss of held-out episodes
for the retention metrics. The checkpoint (``state_bytes``) holds the meta-learner's state and
the penalty's: ``{"format": 2, "learner": ..., "protection": ...}``; a checkpoint from before
(the meta-learner's state dict alone) still loads, with the penalty starting afresh.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptd.adapters import PolicyNet, Task, init_params
from adaptd.adapters.fast_weights import adapt, row_losses, task_loss
from adaptd.adapters.meta.batched import adapted_query_losses, stack_tasks
from adaptd.replay.episode import Episode

from ..config.settings import AdaptationSettings, ContinualSettings
from ..core.gate import passes_gate
from . import checkpoint
from .algorithms import make_learner
from .messages import (
    ACTIVATION,
    CHECKPOINT_MAGIC,
    AdaptationOutcome,
    AdaptJob,
    MetaRound,
    TaskSpec,
)
from .protection import Protection
from .tensors import episode_task, numpy_params, outputs, targets, tensor_params
from .trust_region import TrustRegion, lifts

__all__ = ["CHECKPOINT_FORMAT", "PolicyLearner"]

CHECKPOINT_FORMAT = 3
"""Version of ``state_bytes``: 2 holds the learner and the penalty; 1 (no ``format`` key)
was the learner's state dict alone."""


class PolicyLearner:
    """The policy network of one task, its meta-learned initialisation, and their jobs."""

    def __init__(
        self,
        settings: AdaptationSettings,
        spec: TaskSpec,
        continual: ContinualSettings | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.continual = continual if continual is not None else ContinualSettings()
        self.net = PolicyNet(
            spec.in_dim,
            settings.hidden,
            activation=ACTIVATION,
            output_scale=spec.output_scale,
            out_dim=spec.out_dim,
            skip=spec.skip,
        )
        self.protection = Protection(self.continual, self.net, seed=settings.seed, loss=spec.loss)
        self.learner = make_learner(settings, self.net, spec.loss, self.protection.regularizer)
        # The from-scratch baseline: the same inner loop from an initialisation that was
        # never meta-trained, so reports can show what meta-learning adds.
        self.scratch = init_params(self.net, settings.seed + 1)

    def meta_updates(self) -> int:
        return int(self.learner.updates)

    def warm_up(self) -> None:
        """Run each code path once on throwaway data and a throwaway learner, so the first
        real adaptation does not pay for torch's lazy set-up (vmap, autograd kernels)."""
        gen = torch.Generator().manual_seed(0)
        k, q = self.settings.shots - self.settings.query_size, self.settings.query_size
        if self.spec.loss == "cross_entropy":
            sy = torch.randint(0, self.spec.out_dim, (k,), generator=gen)
            qy = torch.randint(0, self.spec.out_dim, (q,), generator=gen)
        else:
            sy, qy = torch.randn(k, generator=gen), torch.randn(q, generator=gen)
            if self.spec.loss == "qlike":  # variance ratios are positive
                sy, qy = sy.exp(), qy.exp()
        task = Task(
            torch.randn(k, self.spec.in_dim, generator=gen),
            sy,
            torch.randn(q, self.spec.in_dim, generator=gen),
            qy,
        )
        # The penalised paths too: a throwaway penalty with a Fisher, a warm-started adapt.
        guard = Protection(self.continual, self.net, loss=self.spec.loss)
        spare = make_learner(self.settings, self.net, self.spec.loss, guard.regularizer)
        spare.meta_update([task, task])
        if guard.consolidate(spare.params, task.support_x, task.support_y):
            spare.meta_update([task, task])
            guard.adapt(spare, task.support_x, task.support_y, start=spare.params, deadline_s=10.0)
        job = AdaptJob(
            request_id="warm-up",
            task=self.spec.name,
            support_x=task.support_x.numpy().astype(np.float32),
            support_y=task.support_y.numpy().astype(np.float32),
            query_x=task.query_x.numpy().astype(np.float32),
            query_y=task.query_y.numpy().astype(np.float32),
            parent_weights=self.init_numpy(),
            start_weights=None,
            ready_wall_time=time.time(),
        )
        self.adapt(job, deadline_s=10.0)  # pure: the learner's state is unchanged

    def init_numpy(self) -> dict[str, np.ndarray]:
        return numpy_params(self.learner.params)

    def adapt(self, job: AdaptJob, deadline_s: float) -> AdaptationOutcome:
        """Adapt to the job's support set and gate on its query set."""
        queued_s = time.time() - job.ready_wall_time
        start = time.perf_counter()
        loss = self.spec.loss
        sx, sy = torch.from_numpy(job.support_x), targets(job.support_y, loss)
        qx, qy = torch.from_numpy(job.query_x), targets(job.query_y, loss)
        parent = (
            tensor_params(job.parent_weights)
            if job.parent_weights is not None
            else self.learner.params
        )
        constant = self.spec.baseline_output
        with torch.no_grad():
            out_parent = outputs(self.net, parent, qx)
            loss_parent = row_losses(out_parent, qy, loss)
            # Shaped as the network's output: one value, or one logit a class.
            loss_base = None
            if constant is not None:
                out_base = torch.full_like(out_parent, float(constant))
                if self.net.skip:  # the network's constant output plus its offset inputs
                    out_base = out_base + qx[..., -self.net.skip :]
                loss_base = row_losses(out_base, qy, loss)
        bound = self.settings.trust_region
        lifted = bound is not None and lifts(loss_parent, loss_base)
        region = TrustRegion(parent, None if lifted else bound)
        # A returning regime continues from what was learned for it, and its proximal step
        # stays anchored there when the trust region moves the start toward the parent.
        origin = None if job.start_weights is None else tensor_params(job.start_weights)
        begin, step = region.bound(
            self.learner.params if origin is None else origin, self.protection.step(origin)
        )
        # The best iterate, not the last: serving must never take a step that overshot.
        result = self.learner.adapt(
            sx, sy, start=begin, step=step, deadline_s=max(deadline_s, 0.0), keep_best=True
        )
        with torch.no_grad():
            loss_adapted = row_losses(outputs(self.net, result.params, qx), qy, loss)
        before, after = float(loss_parent.mean()), float(loss_adapted.mean())
        gate = self.settings.min_improvement, self.settings.gate_z
        publish = passes_gate(loss_parent.numpy(), loss_adapted.numpy(), *gate)
        base = math.nan
        if loss_base is not None:
            # Champion and challenger: beating the live policy is not enough when the live
            # policy itself loses to the baseline (a fresh initialisation may).
            base = float(loss_base.mean())
            publish = publish and passes_gate(loss_base.numpy(), loss_adapted.numpy(), *gate)
        moved = region.measure(result.params)
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
            loss=loss,
            keep_best=True,
        )
        with torch.no_grad():
            from_scratch = float(task_loss(self.net, scratch.params, qx, qy, loss))
        return AdaptationOutcome(
            request_id=job.request_id,
            publish=publish,
            weights=numpy_params(result.params),
            query_loss_before=before,
            query_loss_after=after,
            query_loss_scratch=from_scratch,
            support_loss_before=result.losses[0] if result.losses else float("nan"),
            support_loss_after=result.loss,
            steps=result.steps,
            deadline_hit=result.deadline_hit,
            seconds=seconds,
            meta_updates=self.meta_updates(),
            queued_s=queued_s,
            query_loss_baseline=base,
            update_distance=moved.distance,
            trust_region=bound,
            trust_region_active=moved.active,
            trust_region_lifted=lifted,
        )

    def meta_train(self, episodes: Sequence[Episode]) -> MetaRound | None:
        """One meta-update from replayed episodes."""
        tasks = [t for e in episodes if (t := self._task(e))]
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
            meta_updates=self.meta_updates(),
            init=self.init_numpy(),
        )

    def consolidate(self, episodes: Sequence[Episode]) -> int:
        """Fold the Fisher of the episodes' examples at the current initialisation into the
        penalty and anchor it there; the consolidations made so far."""
        arrays = [e.arrays() for e in episodes if e.d == self.spec.in_dim]
        if arrays:
            x = torch.tensor(np.concatenate([a[0] for a in arrays]))
            y = targets(np.concatenate([a[1] for a in arrays]), self.spec.loss)
            self.protection.consolidate(self.learner.params, x, y)
        return self.protection.consolidations

    def evaluate(self, episodes: Sequence[Episode]) -> list[float]:
        """Each episode's few-shot query loss from the current initialisation: the learner's
        inner loop on the episode's support part, the loss on its query part
        (``episode_task``); NaN for an episode too short to split."""
        tasks = [self._task(e) for e in episodes]
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
                loss=self.spec.loss,
                backend=self.settings.backend,
                names=self.learner.inner_names,
            )
        found = iter(losses.detach().tolist())
        return [math.nan if t is None else next(found) for t in tasks]

    def _task(self, episode: Episode) -> Task | None:
        if episode.d != self.spec.in_dim:
            # Replayed from before the feature list changed (features.calendar or
            # features.momentum_horizons): of no use to a network of this width.
            return None
        return episode_task(episode, self.settings.query_size, self.spec.loss)

    def state_bytes(self) -> bytes:
        """The checkpoint: the meta-learner's state and the penalty's (format 3, no pickle:
        :mod:`.checkpoint`)."""
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "learner": self.learner.state_dict(),
            "protection": self.protection.state_dict(),
        }
        return checkpoint.dumps(state)

    def load_bytes(self, data: bytes) -> None:
        """Restore ``state_bytes`` output; or, from an earlier version, a ``torch.save`` pickle
        of format 2, or of format 1 (the learner's state alone; the penalty then starts
        afresh). The service hands over a pickle only where ``state.read_pickled_snapshots``
        allows it (torch reads it with its restricted unpickler all the same)."""
        if data.startswith(CHECKPOINT_MAGIC):
            state = checkpoint.loads(data)
        else:
            state = torch.load(io.BytesIO(data), weights_only=True)
        if "format" not in state:
            self.learner.load_state_dict(state)
            self.protection.load_state_dict(None)
            return
        if state["format"] not in (2, CHECKPOINT_FORMAT):
            raise ValueError(f"checkpoint format {state['format']!r} is not {CHECKPOINT_FORMAT}")
        self.learner.load_state_dict(state["learner"])
        self.protection.load_state_dict(state.get("protection"))
