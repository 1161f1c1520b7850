"""Progressive networks: a new column per task, earlier columns frozen, lateral connections
from the frozen columns into the new one (Rusu et al., 2016).

Before the first task the model's :class:`~adaptd.adapters.network.PolicyNet` becomes a
one-column :class:`~adaptd.adapters.continual.columns.ProgressiveNet` whose column 0 keeps the
PolicyNet's weights (``layers.k.*`` renamed ``columns.0.layers.k.*``); before each later task a
seeded new column and its laterals are added and only they are trained. A column is never
changed after its task, so every earlier task's predictions stay exactly what they were
(retention 100 % by construction) and nothing is stored beyond the model (memory 0 bytes):
the cost is the model itself, which grows with every task.

Like the paper, prediction uses the task identity: ``predict(model, x, task)`` runs the column
of ``task`` (computing only the columns up to it); a task the strategy has not trained runs
the newest column. A task seen again after later tasks gets a new column of its own, which
reads the old one through its laterals.

The paper's non-linear lateral "adapters" (a learned scale and a dimensionality-reducing
projection) are left out: the laterals are plain linear maps, as in the paper's ablations.

Cost. With every earlier column as a source the model holds ``C P + Q C (C - 1) / 2`` scalars
(see :mod:`~adaptd.adapters.continual.columns`), with ``max_lateral=k`` at most ``(P + k Q) C``.
Measured for the digits network (``in_dim`` 64, ``hidden`` (100, 100), ``out_dim`` 10, so
``P = 17 610``, ``Q = 11 000``) on one CPU thread of the project's 2-core machine, a batch of
64, forward of the newest column and one training step (forward and backward through
``functional_call``)::

    columns   every lateral: scalars    forward    step    max_lateral=1: scalars   forward   step
          1              17 610         0.04 ms   0.3 ms                   17 610   0.04 ms   0.3 ms
         10             671 100          1.6 ms     3 ms                  275 100    0.6 ms   1.3 ms
         50          14 355 500 (57 MB)   37 ms    58 ms                1 419 500      5 ms     7 ms
        100          56 211 000 (225 MB) 143 ms   231 ms                2 850 000     10 ms    15 ms
        200         222 422 000 (890 MB) 680 ms   1.1 s                 5 711 000     20 ms    30 ms
       1000       5 512 110 000 (22 GB)       -       -                28 599 000    220 ms   410 ms

With every lateral the network stops being practical between 50 and 100 columns (a digits task
of about 45 steps an epoch then takes 3 to 10 s of training, the model hundreds of MB, and
1000 tasks would need 22 GB); with ``max_lateral=1`` size stays linear (114 MB at 1000 columns)
but the forward still computes every earlier column, so the time per step grows linearly and a
sequence of 1000 tasks costs about ``sum_c 45 * 0.4 ms * c``, 2.5 hours an epoch: bounded
memory, unbounded time.

The architecture (number of columns, widths, which column serves which task) is part of the
strategy's state; the weights are the model's. When a model's ``net`` is not the
progressive net its ``params`` need (a model rebuilt from a checkpoint of its weights), the
next hook that sees the model rebuilds ``net`` from the state, and checks the names.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
>>> from adaptd.adapters.continual.training import TrainConfig, train_task
>>> g = torch.Generator().manual_seed(0)
>>> def task(i):
...     x = torch.randn(40, 4, generator=g)
...     y = (x[:, i] > 0).long()
...     return ContinualTask(i, x, y, x, y)
>>> net = PolicyNet(4, (8,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> strategy = ProgressiveNets(seed=0)
>>> first, second = task(0), task(1)
>>> _ = train_task(model, strategy, first, TrainConfig(epochs=3, lr=0.5))
>>> before = strategy.predict(model, first.test_x, first)
>>> _ = train_task(model, strategy, second, TrainConfig(epochs=3, lr=0.5))
>>> strategy.columns, model.net.columns_count, strategy.trainable(model, second)[-1]
(2, 2, 'laterals.1.0.0.weight')
>>> torch.equal(strategy.predict(model, first.test_x, first), before)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from ..checks import integer, non_negative_int
from ..network import PolicyNet
from .columns import ProgressiveNet
from .protocol import ContinualModel, ContinualTask, Strategy
from .seeds import derive_seed

__all__ = ["ProgressiveNets"]


class ProgressiveNets(Strategy):
    """A frozen column per task with lateral connections into each new column.

    Uses the task identity at test time: ``predict`` runs the column of the given task.

    Parameters
    ----------
    max_lateral
        Each new column reads the hidden layers of only the ``max_lateral`` most recent
        columns, so the model grows linearly with the tasks; ``None`` (the paper): every
        earlier column, quadratic growth.
    seed
        Seed of the new columns' weights (combined with the column index).

    Examples
    --------
    >>> ProgressiveNets(max_lateral=2).max_lateral
    2

    References
    ----------
    Rusu, A. A., Rabinowitz, N. C., Desjardins, G., et al. (2016). Progressive neural
    networks. arXiv:1606.04671.
    """

    name: ClassVar[str] = "progressive"
    task_identity: ClassVar[bool] = True
    conformance_options: ClassVar[tuple[Mapping[str, Any], ...]] = ({}, {"max_lateral": 1})
    regularizer: ClassVar[bool] = False

    def __init__(self, max_lateral: int | None = None, seed: int = 0) -> None:
        non_negative_int("max_lateral", max_lateral, optional=True)
        self.max_lateral = max_lateral
        self.seed = integer("seed", seed)
        super().__init__()

    def _reset(self) -> None:
        self.architecture: dict[str, Any] | None = None
        """The columns' PolicyNet arguments (``in_dim``, ``hidden``, ``activation``,
        ``output_scale``, ``out_dim``), taken from the model at the first task."""
        self.columns = 0
        """Columns built so far."""
        self.column_of: dict[int, int] = {}
        """Task id -> the column that learned it."""

    def before_task(self, model: ContinualModel, task: ContinualTask) -> None:
        if self.columns == 0:
            self._convert(model)
        else:
            net = self._net(model)
            if self.column_of.get(task.id) == self.columns - 1:
                return  # the newest column's own task again: keep training it
            grown = net.grown()
            fresh = grown.init_column(self.columns, seed=derive_seed(self.seed, self.columns))
            model.net, model.params = grown, {**model.params, **fresh}
            self.columns += 1
        self.column_of[task.id] = self.columns - 1

    def trainable(self, model: ContinualModel, task: ContinualTask) -> tuple[str, ...] | None:
        if self.columns == 0:
            return None
        return self._net(model).column_names(self.column_of.get(task.id, self.columns - 1))

    def predict(self, model: ContinualModel, x: Tensor, task: ContinualTask) -> Tensor:
        if self.columns == 0:
            return model.output(model.params, x)
        column = self.column_of.get(task.id, self.columns - 1)
        return self._net(model).run(model.params, x, column)

    def _convert(self, model: ContinualModel) -> None:
        """Make ``model`` a one-column progressive net that computes what it computed."""
        net = model.net
        if not isinstance(net, PolicyNet) or net.norm != "none":
            raise ValueError(
                f"progressive networks start from a PolicyNet without normalisation, got {net!r}"
            )
        progressive = ProgressiveNet.like(net, columns=1, max_lateral=self.max_lateral)
        model.params = {f"columns.0.{k}": v for k, v in model.params.items()}
        model.net = progressive
        self.architecture = {
            "in_dim": net.in_dim,
            "hidden": list(net.hidden),
            "activation": net.activation,
            "output_scale": net.output_scale,
            "out_dim": net.out_dim,
        }
        self.columns = 1

    def _net(self, model: ContinualModel) -> ProgressiveNet:
        """``model.net``, rebuilt from the state when it is not the net ``model.params``
        belong to."""
        net = model.net
        if isinstance(net, ProgressiveNet) and net.columns_count == self.columns:
            return net
        if self.architecture is None:
            raise ValueError("the strategy has no columns yet: call before_task first")
        arch = {**self.architecture, "hidden": tuple(self.architecture["hidden"])}
        net = ProgressiveNet(**arch, columns=self.columns, max_lateral=self.max_lateral)
        names = {name for name, _ in net.named_parameters()}
        if names != set(model.params):
            raise ValueError(
                f"model params do not match the strategy's {self.columns} columns "
                f"(differ in {sorted(names ^ set(model.params))[:3]}...)"
            )
        model.net = net
        return net

    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_lateral": self.max_lateral,
            "architecture": None if self.architecture is None else dict(self.architecture),
            "columns": self.columns,
            "column_of": dict(self.column_of),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if state["max_lateral"] != self.max_lateral:
            raise ValueError(
                f"state has max_lateral={state['max_lateral']!r}, this strategy "
                f"{self.max_lateral!r}"
            )
        self._reset()
        arch = state["architecture"]
        self.architecture = None if arch is None else {**arch, "hidden": list(arch["hidden"])}
        self.columns = int(state["columns"])
        self.column_of = {int(k): int(v) for k, v in state["column_of"].items()}
