"""What an adaptation's outcome becomes: the policy message published for it, the record kept
for reports and benchmarks, and the metrics and log lines that describe it. Pure functions
and a record type; :mod:`.publishing` does the I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..core.effects import AdaptationRequest, Retired
from ..core.naming import regime_name
from ..core.policy import PolicyMessage, RegimeRef, ShiftRef, build_message
from ..io.metrics import Metrics
from ..learner.messages import AdaptationOutcome, AdaptJob
from .configs import TaskModel

__all__ = ["AdaptationRecord", "adapt_job", "observe", "policy_message", "retirement_message"]


class AdaptationRecord(NamedTuple):
    """What became of one adaptation request (kept in memory for reports and benchmarks)."""

    stream: str
    shift_id: str
    published: bool
    version: int
    index: int
    """The stream's event count when the outcome was applied (-1: no longer owned)."""
    seconds: float
    query_loss_before: float
    query_loss_after: float
    query_loss_scratch: float
    shift_to_publish_s: float
    """From the shift's detection to the outcome: includes waiting for the shots' labels."""
    task: str = "return"
    ready_to_publish_s: float = float("nan")
    """From the adaptation set's completion (the request) to the outcome: what the daemon
    itself takes (queue, learner, gate, publication)."""
    queued_s: float = float("nan")
    """From the adaptation set's completion to the learner starting on it: the wait behind
    the learner's other jobs and the batch in progress."""


def adapt_job(request: AdaptationRequest) -> AdaptJob:
    """The learner's job for a request: its examples and starting points, nothing else."""
    return AdaptJob(
        request_id=request.id,
        task=request.task,
        support_x=request.support_x,
        support_y=request.support_y,
        query_x=request.query_x,
        query_y=request.query_y,
        parent_weights=request.parent_weights,
        start_weights=request.start_weights,
        ready_wall_time=request.ready_wall_time,
    )


def record(
    request: AdaptationRequest, outcome: AdaptationOutcome, version: int, index: int
) -> AdaptationRecord:
    now = time.time()
    return AdaptationRecord(
        stream=request.stream,
        shift_id=request.shift.id,
        published=version > 0,
        version=version,
        index=index,
        seconds=outcome.seconds,
        query_loss_before=outcome.query_loss_before,
        query_loss_after=outcome.query_loss_after,
        query_loss_scratch=outcome.query_loss_scratch,
        shift_to_publish_s=now - request.shift.wall_time,
        task=request.task,
        ready_to_publish_s=now - request.ready_wall_time,
        queued_s=outcome.queued_s,
    )


def observe(metrics: Metrics, outcome: AdaptationOutcome) -> None:
    """The learner-side figures of an outcome, whether it is published or not."""
    metrics.adaptation_latency.observe(outcome.seconds)
    metrics.adaptation_queue.observe(outcome.queued_s)
    if outcome.deadline_hit:
        metrics.adaptation_deadline_hits.inc()
    metrics.query_loss.labels(policy="current").observe(outcome.query_loss_before)
    metrics.query_loss.labels(policy="adapted").observe(outcome.query_loss_after)


def policy_message(
    request: AdaptationRequest,
    outcome: AdaptationOutcome,
    version: int,
    model: TaskModel,
    algorithm: dict[str, Any],
) -> PolicyMessage:
    """The message that publishes an adapted policy (docs/operations.md)."""
    shift = request.shift
    now = time.time()
    return build_message(
        model_id=request.model,
        version=version,
        parent_version=request.parent_version,
        stream=request.stream,
        weights=outcome.weights,
        architecture=model.architecture,
        features=model.features,
        task=model.description,
        shift=ShiftRef(
            id=shift.id,
            triggers=shift.shift.triggers,
            index=shift.shift.index,
            ts_ms=shift.ts_ms,
            topic=shift.topic,
            partition=shift.partition,
            offset=shift.offset,
            change_index=shift.shift.change_index,
        ),
        regime=_regime_ref(request, model.features["names"]),
        algorithm=algorithm,
        metrics={
            "query_loss_before": outcome.query_loss_before,
            "query_loss_after": outcome.query_loss_after,
            "query_loss_from_scratch": outcome.query_loss_scratch,
            "support_loss_before": outcome.support_loss_before,
            "support_loss_after": outcome.support_loss_after,
            "support_size": float(len(request.support_y)),
            "query_size": float(len(request.query_y)),
            "steps": float(outcome.steps),
            "deadline_hit": float(outcome.deadline_hit),
            # Only for a task whose baseline is a constant output (JSON has no NaN).
            **(
                {"query_loss_baseline": outcome.query_loss_baseline}
                if math.isfinite(outcome.query_loss_baseline)
                else {}
            ),
            **_movement(outcome),
        },
        latency_s={
            "adaptation": outcome.seconds,
            "shift_to_publish": now - shift.wall_time,
            "ready_to_publish": now - request.ready_wall_time,
        },
        source={
            "topic": shift.topic,
            "partition": shift.partition,
            "first_offset": request.first_offset,
            "last_offset": request.last_offset,
        },
    )


def _movement(outcome: AdaptationOutcome) -> dict[str, float]:
    """How far the update moved from the parent and, with ``adaptation.trust_region`` set,
    whether the bound was active or lifted (a distance not measured, NaN, is left out)."""
    out = {}
    if math.isfinite(outcome.update_distance):
        out["update_distance"] = outcome.update_distance
    if outcome.trust_region is not None:
        out["trust_region_active"] = float(outcome.trust_region_active)
        out["trust_region_lifted"] = float(outcome.trust_region_lifted)
    return out


def _regime_ref(request: AdaptationRequest, names: Sequence[str]) -> RegimeRef | None:
    match = request.regime
    if match is None:
        return None
    x = np.concatenate([request.support_x, request.query_x])
    return RegimeRef(
        id=match.regime_id,
        known=match.known,
        ratio=match.ratio if math.isfinite(match.ratio) else None,
        warm_start=request.start_weights is not None,
        name=regime_name(x, names),
    )


def retirement_message(
    retired: Retired, version: int, model: TaskModel, algorithm: dict[str, Any]
) -> PolicyMessage:
    """The message that publishes a task's baseline in place of a retired policy."""
    verdict = retired.verdict
    baseline = str(model.description.get("baseline", "baseline"))
    return build_message(
        model_id=retired.model,
        version=version,
        parent_version=verdict.version,
        stream=retired.stream,
        weights=retired.weights,
        architecture=model.architecture,
        features=model.features,
        task=model.description,
        algorithm=algorithm,
        metrics={
            "validation_examples": float(verdict.examples),
            "validation_excess_loss": verdict.excess,
            "validation_standard_error": verdict.standard_error,
            # The sign test's evidence, when it was the sign test that retired the policy.
            **({"validation_lost_on": float(verdict.worse)} if verdict.worse >= 0 else {}),
        },
        source={"topic": retired.topic, "partition": retired.partition},
        validation={
            "retired_version": verdict.version,
            "replaced_by": "baseline",
            "baseline": baseline,
            "reason": retired.reason,
        },
    )
