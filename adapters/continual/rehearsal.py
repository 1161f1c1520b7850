"""What the rehearsal strategies share (experience replay, core sets, generative replay, GEM,
A-GEM): the classes of every task learned, and the loss of a rehearsed example scored over its
own task's classes.

In the task-incremental setting a task uses only some outputs (its ``classes``). A rehearsed
example keeps its task id, and :func:`replay_losses` scores it over that task's classes alone
(:func:`restrict_to_tasks` masks the other outputs with ``-inf``), so rehearsing task 0 never
pushes down the logits of task 1's classes. :class:`Rehearsal` is the base class that keeps
the classes by task id and saves them with the state. Its two branches say where a strategy's
random draws come from: :class:`MemoryRehearsal`, the
:class:`~adaptd.adapters.continual.memory.EpisodicMemory` that experience replay and A-GEM draw
from; :class:`SeededRehearsal`, a generator of the strategy's own (core sets, generative
replay, GEM). Either is saved with the state, so a restored strategy draws what the original
would have.

Examples
--------
>>> import torch
>>> logits = torch.zeros(3, 4)
>>> out, keep = restrict_to_tasks(logits, torch.tensor([0, 1, 2]), {0: (0, 1), 1: (2, 3)})
>>> out.tolist()[1], keep.tolist()[2]  # task 2 has no classes: every output
([-inf, -inf, 0.0, 0.0], [True, True, True, True])
>>> classes_from_state(classes_state({0: (0, 1), 1: None}))
{0: (0, 1), 1: None}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from .memory import EpisodicMemory
from .protocol import ContinualModel, ContinualTask, Strategy

__all__ = [
    "Classes",
    "MemoryRehearsal",
    "Rehearsal",
    "SeededRehearsal",
    "class_mask",
    "classes_from_state",
    "classes_state",
    "replay_losses",
    "restrict_to_tasks",
]

Classes = Mapping[int, tuple[int, ...] | None]
"""Task id -> the outputs its examples may use (None: every output)."""


def class_mask(task_ids: Tensor, classes: Classes, n_outputs: int) -> Tensor | None:
    """``(n, n_outputs)`` booleans: which outputs example ``i`` may use (its task's classes;
    every output for a task without classes or not in ``classes``); None when all may."""
    ids = torch.unique(task_ids).tolist()
    if all(classes.get(t) is None for t in ids):
        return None
    rows = torch.ones(len(ids), n_outputs, dtype=torch.bool)
    for r, t in enumerate(ids):
        allowed = classes.get(t)
        if allowed is not None:
            rows[r] = False
            rows[r, list(allowed)] = True
    return rows[torch.searchsorted(torch.tensor(ids), task_ids)]


def restrict_to_tasks(
    output: Tensor, task_ids: Tensor, classes: Classes
) -> tuple[Tensor, Tensor | None]:
    """``output`` logits ``(n, outputs)`` with each row's outputs outside its task's classes
    set to ``-inf``, and the :func:`class_mask` of the kept ones; ``(output, None)`` itself when
    every output is kept."""
    keep = class_mask(task_ids, classes, output.shape[-1])
    if keep is None:
        return output, None
    return output.masked_fill(~keep, float("-inf")), keep


def replay_losses(
    model: ContinualModel,
    params: Mapping[str, Tensor],
    x: Tensor,
    targets: Tensor,
    task_ids: Tensor,
    classes: Classes,
) -> Tensor:
    """Per-example loss ``(n,)`` of ``model`` at ``params``: cross-entropy over each example's
    task classes (``targets`` class ids ``(n,)`` or probabilities ``(n, outputs)``), or the
    squared error for regression."""
    out = model.output(params, x)
    if model.loss != "cross_entropy":
        return (out - targets) ** 2
    out, keep = restrict_to_tasks(out, task_ids, classes)
    logp = torch.log_softmax(out, dim=-1)
    if targets.is_floating_point():  # soft targets; masked columns carry probability 0
        if keep is not None:
            logp = logp.masked_fill(~keep, 0.0)
        return -(targets * logp).sum(-1)
    return torch.nn.functional.nll_loss(logp, targets, reduction="none")


def classes_state(classes: Classes) -> list[list[Any]]:
    """``classes`` as ``[[task id, [class, ...] or None], ...]`` (what ``torch.load`` with
    ``weights_only=True`` accepts)."""
    return [[t, None if c is None else list(c)] for t, c in classes.items()]


def classes_from_state(state: list[list[Any]]) -> dict[int, tuple[int, ...] | None]:
    """The inverse of :func:`classes_state`."""
    return {int(t): None if c is None else tuple(int(v) for v in c) for t, c in state}


class Rehearsal(Strategy):
    """Base of the rehearsal strategies (not a strategy itself): the classes of every task
    learned, oldest first, saved under "classes" in the state."""

    name: ClassVar[str] = ""

    def _reset(self) -> None:
        super()._reset()
        self._classes: dict[int, tuple[int, ...] | None] = {}
        """Task id -> its classes, in the order the tasks were learned (a task seen again
        counts as the newest)."""

    def _learned(self, task: ContinualTask) -> None:
        """Record ``task``'s classes, as the newest task."""
        self._classes.pop(task.id, None)
        self._classes[task.id] = task.classes

    def _past(self, task: ContinualTask) -> list[int]:
        """Ids of the tasks learned other than ``task``, oldest first."""
        return [t for t in self._classes if t != task.id]

    def state_dict(self) -> dict[str, Any]:
        """The name and the classes of the tasks learned; subclasses add their own state."""
        return {**super().state_dict(), "classes": classes_state(self._classes)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's."""
        super().load_state_dict(state)
        self._classes = classes_from_state(state["classes"])


class MemoryRehearsal(Rehearsal):
    """Base of the strategies that draw from an episodic memory (experience replay, A-GEM):
    a subclass builds ``memory`` in ``_reset``; its state is saved with the classes."""

    memory: EpisodicMemory
    """Where the examples offered so far are held."""

    def state_dict(self) -> dict[str, Any]:
        """The memory's state and the classes of the tasks learned."""
        return {**super().state_dict(), "memory": self.memory.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's or another
        memory's (then nothing is changed)."""
        # The memory refuses a state of another capacity or policy before changing anything, so
        # it goes after the name check and before the classes are replaced.
        Strategy.load_state_dict(self, state)
        self.memory.load_state_dict(state["memory"])
        super().load_state_dict(state)


class SeededRehearsal(Rehearsal):
    """Base of the rehearsal strategies that draw from a generator of their own (core sets,
    generative replay, GEM), seeded with the subclass's ``seed``; its state is saved with the
    classes."""

    seed: int
    """Seed of the generator (a constructor argument of the subclass)."""

    def _reset(self) -> None:
        super()._reset()
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def state_dict(self) -> dict[str, Any]:
        """The generator's state and the classes of the tasks learned."""
        return {**super().state_dict(), "generator": self._generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; ValueError when it is another strategy's."""
        super().load_state_dict(state)
        self._generator.set_state(state["generator"].clone())
