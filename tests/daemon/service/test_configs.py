"""From the Settings to the parts' own configs: the core's StreamConfig, the learner's TaskSpec
per task, and what messages and checkpoints say about each task's model. The return task's
model keeps the exact ``architecture`` and ``features`` of messages from before policy tasks,
so subscribers and checkpoints of an earlier deployment still match."""

from __future__ import annotations

import json

from direction_task import DirectionTask

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.stream import RegimeParams
from adaptd.daemon.core.tasks.returns import ReturnTask
from adaptd.daemon.learner.messages import TaskSpec, algorithm
from adaptd.daemon.service.configs import (
    algorithm_of,
    stream_config,
    task_models,
    tasks_of,
)

SETTINGS = load_settings(
    environ={},
    features={
        "momentum_horizons": [5, 20],
        "fast_halflife": 8.0,
        "slow_halflife": 150.0,
        "label_horizon": 4,
        "label_clip": 6.0,
        "warmup_events": 30,
        "max_out_of_order_ms": 2500,
    },
    detection={"scale_halflife": 700.0},
    regimes={
        "novelty": 3.5,
        "max_regimes": 9,
        "warm_start": False,
        "exclude_features": ["vol_ratio"],
    },
    adaptation={
        "shots": 14,
        "query_size": 5,
        "hidden": [16, 8],
        "tasks": ["return", "direction_task:DirectionTask"],
    },
    replay={"episode_size": 24},
    redis={"key_prefix": "desk"},
)
NAMES = [
    "ret_z",
    "mean_fast_z",
    "mean_slow_z",
    "vol_ratio",
    "mom_5_z",
    "mom_20_z",
    "spread_z",
    "volume_z",
]
# The message's features as the daemon wrote them before policy tasks, key order included.
FEATURES_BEFORE_TASKS = {
    "version": 1,
    "names": NAMES,
    "momentum_horizons": [5, 20],
    "fast_halflife": 8.0,
    "slow_halflife": 150.0,
    "clip": 6.0,
    "warmup_events": 30,
    "vol": (
        "slow EW root mean square of log returns (bias-safe: a plain mean until the EW weight "
        "takes over), floored at 1e-08; features at t are scaled by vol_(t-1)"
    ),
    "label": {
        "horizon": 4,
        "clip": 6.0,
        "definition": "forward log return over H events / (vol_t * sqrt(H)), clipped",
    },
}
ARCHITECTURE_BEFORE_TASKS = {
    "kind": "mlp",
    "in_dim": 8,
    "hidden": [16, 8],
    "activation": "tanh",
    "output_scale": 0.1,
    "output": "scaled forward return",
}


def test_the_configured_tasks_are_built_for_the_label_horizon_and_clip() -> None:
    assert tasks_of(SETTINGS) == (ReturnTask(horizon=4, clip=6.0), DirectionTask(4, 6.0))
    only = load_settings(environ={})
    assert tasks_of(only) == (ReturnTask(horizon=5, clip=10.0),)


def test_the_stream_config_takes_each_setting_from_its_section() -> None:
    tasks = tasks_of(SETTINGS)
    config = stream_config(SETTINGS, tasks)
    assert config.features is SETTINGS.features
    assert config.detection is SETTINGS.detection
    assert config.scale_halflife == 700.0
    assert config.tasks == tasks
    assert config.regimes == RegimeParams(3.5, 9, False, ("vol_ratio",))
    assert (config.episode_size, config.shots, config.query_size) == (24, 14, 5)
    assert config.max_out_of_order_ms == 2500
    assert config.activation == "tanh"
    assert list(config.feature_names) == NAMES
    back, direction = config.tracks
    assert (back.columns, back.feature_names) == (None, tuple(NAMES))
    assert back.regime_columns == tuple(i for i, n in enumerate(NAMES) if n != "vol_ratio")
    assert direction.columns == (0, 1, 3)
    assert direction.feature_names == ("ret_z", "mean_fast_z", "vol_ratio")
    assert direction.regime_columns == (0, 1)  # vol_ratio is excluded from the embedding
    for track in config.tracks:
        assert (track.episode_size, track.shots, track.query_size) == (24, 14, 5)
        assert (track.novelty, track.max_regimes, track.warm_start) == (3.5, 9, False)


def test_calendar_features_reach_the_policies_but_never_the_regime_embedding() -> None:
    features = {**SETTINGS.features.model_dump(), "calendar": ["day_of_week", "month_end"]}
    settings = SETTINGS.model_copy(update={"features": type(SETTINGS.features)(**features)})
    calendar = ("day_of_week_sin", "day_of_week_cos", "month_end")
    config = stream_config(settings, tasks_of(settings))
    assert config.feature_names == (*NAMES, *calendar)
    assert config.regimes.exclude_features == ("vol_ratio", *calendar)
    back = config.tracks[0]
    assert back.regime_columns == tuple(i for i, n in enumerate(NAMES) if n != "vol_ratio")
    model = task_models(settings, tasks_of(settings))[0]
    assert model.spec.in_dim == len(NAMES) + 3
    assert model.features["names"] == [*NAMES, *calendar]
    assert set(model.features["calendar"]) == {"time", "scale", "day_of_week", "month_end"}


def test_the_return_tasks_model_says_what_messages_said_before_tasks() -> None:
    model, _ = task_models(SETTINGS, tasks_of(SETTINGS))
    assert model.name == "return"
    assert model.key_prefix == "desk"  # the replay, hold-out and checkpoint keys of before
    assert model.spec == TaskSpec(
        name="return",
        in_dim=8,
        out_dim=1,
        loss="mse",
        output_scale=0.1,
        output="scaled forward return",
        baseline_output=0.0,  # the zero forecast
    )
    assert json.dumps(model.architecture) == json.dumps(ARCHITECTURE_BEFORE_TASKS)
    assert json.dumps(model.features) == json.dumps(FEATURES_BEFORE_TASKS)
    assert model.description == model.task.describe()
    assert model.description["label"] == FEATURES_BEFORE_TASKS["label"]


def test_a_second_task_gets_its_own_features_head_and_key_prefix() -> None:
    _, model = task_models(SETTINGS, tasks_of(SETTINGS))
    assert model.name == "direction"
    assert model.key_prefix == "desk.direction"
    own = ["ret_z", "mean_fast_z", "vol_ratio"]
    assert model.spec == TaskSpec(
        name="direction",
        in_dim=3,
        out_dim=2,
        loss="cross_entropy",
        output_scale=0.1,
        output="logits of (down or flat, up)",
    )
    assert model.architecture == {**ARCHITECTURE_BEFORE_TASKS, "in_dim": 3} | {
        "output": "logits of (down or flat, up)",
        "out_dim": 2,
    }
    # The stream's feature description, narrowed to the task's names, with its own label.
    shared = {k: v for k, v in FEATURES_BEFORE_TASKS.items() if k not in ("names", "label")}
    assert model.features == {**shared, "names": own, "label": model.description["label"]}
    assert model.description == DirectionTask(4, 6.0).describe()


def test_models_follow_the_configured_order() -> None:
    flipped = SETTINGS.model_copy(
        update={
            "adaptation": SETTINGS.adaptation.model_copy(
                update={"tasks": ("direction_task:DirectionTask", "return")}
            )
        }
    )
    assert [m.name for m in task_models(flipped, tasks_of(flipped))] == ["direction", "return"]


def test_the_algorithm_describes_the_adaptation_settings() -> None:
    described = algorithm_of(SETTINGS, 12)
    assert described == algorithm(SETTINGS.adaptation, 12)
    assert described["meta_updates"] == 12
    assert described["meta_algorithm"] == SETTINGS.adaptation.meta_algorithm
    assert (described["inner_steps"], described["inner_lr"]) == (5, 0.05)
