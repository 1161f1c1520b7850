"""Every policy task adaptd can run, found rather than listed.

A task is found when it is
- a class in a module of this folder (:mod:`adaptd.daemon.core.tasks`): adding a task is adding
  one file;
- a class named by an entry point of the ``adaptd.tasks`` group of an installed package;
- or named ``module:Class`` in the setting itself (for example a task under test).

The classes of a task from outside adaptd's core may be held in the stream states the daemon
stores: their package is allowed in :mod:`..state_format` when the task is resolved.

Every task class is built the same way, ``cls(horizon=..., clip=..., **options)``, from the
stream's label horizon and clip (``features.label_horizon``, ``features.label_clip``) and the
task's own options (``adaptation.task_options``), if any.

>>> sorted(available())
['return', 'risk', 'strategy']
>>> [t.name for t in build(("return",), horizon=5, clip=10.0)]
['return']
>>> build(("nope",), horizon=5, clip=10.0)
Traceback (most recent call last):
...
ValueError: unknown policy task 'nope' (known: return, risk, strategy; or give module:Class)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from ..state_format import allow_package
from .protocol import PolicyTask

__all__ = ["ENTRY_POINTS", "TaskFactory", "available", "build", "is_task_class", "resolve"]

ENTRY_POINTS = "adaptd.tasks"
"""Entry-point group through which installed packages add tasks."""

TaskFactory = Callable[..., PolicyTask]


def is_task_class(obj: object) -> bool:
    """A class with what :class:`PolicyTask` asks for (a name, a head, the methods)."""
    return (
        inspect.isclass(obj)
        and isinstance(getattr(obj, "name", None), str)
        and hasattr(obj, "head")
        and all(callable(getattr(obj, m, None)) for m in ("label_rule", "losses", "describe"))
    )


def _builtin() -> dict[str, TaskFactory]:
    found: dict[str, TaskFactory] = {}
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{__package__}.{info.name}")
        for obj in vars(module).values():
            if is_task_class(obj) and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return found


def available() -> dict[str, TaskFactory]:
    """Every task by name: this folder's and the entry points' (an entry point may not
    replace a built-in task)."""
    tasks = _builtin()
    for ep in entry_points(group=ENTRY_POINTS):
        if ep.name not in tasks:
            tasks[ep.name] = ep.load()
    return tasks


def resolve(name: str) -> TaskFactory:
    """The task class for a registry name or a ``module:Class`` path; ValueError otherwise."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import policy task {name!r}: {exc}") from None
        if not is_task_class(obj):
            raise ValueError(f"{name!r} is not a policy task class")
        return _trusted(obj)
    tasks = available()
    if name not in tasks:
        known = ", ".join(sorted(tasks))
        raise ValueError(f"unknown policy task {name!r} (known: {known}; or give module:Class)")
    return _trusted(tasks[name])


def _trusted(task: TaskFactory) -> TaskFactory:
    """``task``, whose package's classes may now be stored in stream states (the daemon runs
    its code anyway); within adaptd, only its own module's."""
    module = getattr(task, "__module__", "")
    if not module.startswith("adaptd.daemon.core."):
        package = module.partition(".")[0]
        allow_package(module if package == "adaptd" else package)
    return task


def build(
    names: Sequence[str],
    *,
    horizon: int,
    clip: float,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[PolicyTask, ...]:
    """The tasks named, in order, built for a stream's label horizon and clip, with their
    ``options`` by task name (a task's own ``horizon`` or ``clip`` among them wins)."""
    opts = options or {}
    tasks = tuple(
        resolve(name)(**{"horizon": horizon, "clip": clip, **opts.get(name, {})}) for name in names
    )
    seen = [t.name for t in tasks]
    if len(set(seen)) != len(seen):
        raise ValueError(f"policy tasks must be distinct, got {seen}")
    if not tasks:
        raise ValueError("at least one policy task is needed")
    return tasks
