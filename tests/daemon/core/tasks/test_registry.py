"""Finding policy tasks: this folder's files, entry points, and ``module:Class`` names."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from direction_task import DirectionTask

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.tasks import registry
from adaptd.daemon.core.tasks.returns import ReturnTask
from adaptd.daemon.service.configs import tasks_of


def test_the_folder_is_searched_and_helpers_in_it_are_not_tasks() -> None:
    found = registry.available()
    assert found["return"] is ReturnTask
    assert not {"ForwardReturnRule", "ZeroForecast", "PolicyTask"} & {
        getattr(t, "__name__", "") for t in found.values()
    }


def test_a_class_outside_adaptd_is_named_module_colon_class() -> None:
    assert registry.resolve("direction_task:DirectionTask") is DirectionTask
    tasks = registry.build(("return", "direction_task:DirectionTask"), horizon=4, clip=5.0)
    assert [t.name for t in tasks] == ["return", "direction"]
    assert tasks[1].label_rule().horizon == 4


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "unknown policy task 'nope'"),
        ("no_such_module:X", "cannot import policy task"),
        ("direction_task:Nothing", "cannot import policy task"),
        ("direction_task:UpRule", "is not a policy task class"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        registry.resolve(name)


def test_a_task_may_have_its_own_horizon_and_clip() -> None:
    tasks = registry.build(
        ("return", "strategy"), horizon=1, clip=10.0, options={"strategy": {"horizon": 20}}
    )
    assert [t.label_rule().horizon for t in tasks] == [1, 20]
    settings = load_settings(
        environ={},
        adaptation={"tasks": ["return", "risk"], "task_options": {"risk": {"clip": 4.0}}},
    )
    assert [t.clip for t in tasks_of(settings)] == [settings.features.label_clip, 4.0]


def test_tasks_must_be_distinct_and_at_least_one() -> None:
    with pytest.raises(ValueError, match="distinct"):
        registry.build(("return", "return"), horizon=5, clip=10.0)
    with pytest.raises(ValueError, match="at least one"):
        registry.build((), horizon=5, clip=10.0)


def test_an_installed_package_adds_tasks_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint("direction", "direction_task:DirectionTask", registry.ENTRY_POINTS),
        EntryPoint("return", "direction_task:DirectionTask", registry.ENTRY_POINTS),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    found = registry.available()
    assert found["direction"] is DirectionTask
    assert found["return"] is ReturnTask  # an entry point never replaces a built-in task
