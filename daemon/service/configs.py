"""From the one Settings object to the small typed configs the parts take: the core's
``StreamConfig``, the learner's ``TaskSpec`` per policy task, and what the service itself
says about each task's models in messages and checkpoints.

This is the only place that knows both the Settings and the parts' own configs, so the core
never sees the Settings (a test enforces it) and a setting maps to a part in one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.settings import Settings
from ..core.calendar import calendar_names
from ..core.feature_spec import feature_names, feature_spec
from ..core.stream import RegimeParams, StreamConfig
from ..core.tasks.protocol import PolicyTask, input_names, qualified
from ..core.tasks.registry import build
from ..core.validation import ValidationParams
from ..learner.messages import ACTIVATION, TaskSpec, algorithm, architecture

__all__ = ["TaskModel", "stream_config", "task_models", "tasks_of"]


def tasks_of(settings: Settings) -> tuple[PolicyTask, ...]:
    """The configured policy tasks, built for the stream's label horizon and clip."""
    f = settings.features
    a = settings.adaptation
    return build(a.tasks, horizon=f.label_horizon, clip=f.label_clip, options=a.task_options)


def stream_config(settings: Settings, tasks: tuple[PolicyTask, ...]) -> StreamConfig:
    """What every stream needs, from the ``features``, ``detection``, ``regimes``,
    ``adaptation`` and ``replay`` sections."""
    r, a = settings.regimes, settings.adaptation
    # A regime is what the market does, not when: calendar columns constant within the few
    # examples after a shift (the weekday of hourly events) would make every return of a
    # regime on another day look new.
    excluded = (*r.exclude_features, *calendar_names(settings.features.calendar))
    return StreamConfig(
        features=settings.features,
        detection=settings.detection,
        scale_halflife=settings.detection.scale_halflife,
        tasks=tasks,
        regimes=RegimeParams(r.novelty, r.max_regimes, r.warm_start, excluded),
        episode_size=settings.replay.episode_size,
        shots=a.shots,
        query_size=a.query_size,
        max_out_of_order_ms=settings.features.max_out_of_order_ms,
        activation=ACTIVATION,
        validation=ValidationParams(a.validate_policies, a.validate_z, a.validate_min_examples),
    )


@dataclass(frozen=True)
class TaskModel:
    """One policy task as the service handles it: the learner's spec, the key prefix of its
    replay, hold-out and checkpoint, and what its messages and checkpoints say."""

    task: PolicyTask
    spec: TaskSpec
    key_prefix: str
    """``redis.key_prefix``, with ``.{task}`` for a qualified task."""
    architecture: dict[str, Any]
    features: dict[str, Any]
    """The message's ``features``: the feature spec, the task's names and its label."""
    description: dict[str, Any]
    """The message's ``task``."""

    @property
    def name(self) -> str:
        return self.task.name


def task_models(settings: Settings, tasks: tuple[PolicyTask, ...]) -> tuple[TaskModel, ...]:
    """One :class:`TaskModel` per task, in the configured order."""
    names = feature_names(settings.features)
    spec = feature_spec(settings.features)
    models = []
    for task in tasks:
        own = list(input_names(task, names))
        description = task.describe()
        task_spec = TaskSpec(
            name=task.name,
            in_dim=len(own),
            out_dim=task.head.out_dim,
            loss=task.loss,
            output_scale=task.head.output_scale,
            output=str(description["output"]),
            baseline_output=task.baseline().constant_output,
            skip=task.head.skip,
        )
        models.append(
            TaskModel(
                task=task,
                spec=task_spec,
                key_prefix=qualified(settings.redis.key_prefix, task, "."),
                architecture=architecture(settings.adaptation, task_spec),
                features={**spec, "names": own, "label": description["label"]},
                description=description,
            )
        )
    return tuple(models)


def algorithm_of(settings: Settings, meta_updates: int) -> dict[str, Any]:
    """The message's ``algorithm`` after ``meta_updates`` meta-updates."""
    return algorithm(settings.adaptation, meta_updates)
