"""The architecture of a progressive network: a row of MLP columns, each reading the hidden
layers of the columns before it through lateral connections.

Column ``c`` is a :class:`~adaptd.adapters.network.PolicyNet` (``in_dim``, ``hidden``,
``out_dim``, ``activation``); its linear layer ``i >= 1`` (the hidden layers after the first, and
the output layer) also receives ``U^{c:j}_i h^j_{i-1}`` from hidden layer ``i - 1`` of every
source column ``j`` (all earlier columns, or the ``max_lateral`` most recent). Parameter names:

=================================  ===================  =====================================
name                               shape                role
=================================  ===================  =====================================
``columns.{c}.layers.{k}.weight``  as in PolicyNet      column ``c``'s own layers (``k = 2i``)
``columns.{c}.layers.{k}.bias``
``laterals.{c}.{i-1}.{j}.weight``  ``(h_i, h_{i-1})``   from column ``j`` into layer ``i``
=================================  ===================  =====================================

(``h_i`` is the width of layer ``i``'s output, ``out_dim`` for the last layer; laterals have
no bias, the column's own layer has one.) With widths ``w = (in_dim, h_1, ..., h_L, out_dim)``,
``P = sum_i (w_i + 1) w_{i+1}`` weights per column and ``Q = sum_{i>=1} w_i w_{i+1}`` per
lateral source, ``C`` columns hold ``C P + Q * sum_c min(c, max_lateral)`` scalars:
``C P + Q C (C - 1) / 2`` with every earlier column as a source, quadratic in ``C``.

The module is the architecture only: its parameters are placeholders on the ``meta`` device
(no memory, no random numbers drawn), and the weights live in a dict of tensors run by
:meth:`ProgressiveNet.run` (or ``torch.func.functional_call``). A forward computes each column
once, layer by layer, and only the columns up to the one asked for.

Examples
--------
>>> import torch
>>> net = ProgressiveNet(3, (4,), out_dim=2, columns=2)
>>> params = {**net.init_column(0, seed=0), **net.init_column(1, seed=1)}
>>> sorted(params)  # doctest: +NORMALIZE_WHITESPACE
['columns.0.layers.0.bias', 'columns.0.layers.0.weight', 'columns.0.layers.2.bias',
 'columns.0.layers.2.weight', 'columns.1.layers.0.bias', 'columns.1.layers.0.weight',
 'columns.1.layers.2.bias', 'columns.1.layers.2.weight', 'laterals.1.0.0.weight']
>>> x = torch.randn(5, 3)
>>> net.run(params, x, column=0).shape, net.run(params, x).shape
(torch.Size([5, 2]), torch.Size([5, 2]))
>>> torch.equal(torch.func.functional_call(net, params, (x,)), net.run(params, x))
True
>>> net.grown().columns_count, net.parameter_count()
(3, 60)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..checks import integer, non_negative_int
from ..network import ACTIVATION_FNS, PolicyNet, init_params

__all__ = ["ProgressiveNet"]


class ProgressiveNet(nn.Module):
    """Columns of MLPs with lateral connections (Rusu et al., 2016), architecture only.

    Parameters
    ----------
    in_dim, hidden, activation, output_scale, out_dim
        Every column's architecture, as for :class:`~adaptd.adapters.network.PolicyNet`
        (without normalisation).
    columns
        Number of columns (0 gives an empty net to :meth:`grown` from).
    max_lateral
        Each column reads only the hidden layers of the ``max_lateral`` most recent earlier
        columns, which makes the size linear in the number of columns; ``None``: every earlier
        column (the paper's architecture), quadratic.

    Examples
    --------
    >>> net = ProgressiveNet(4, (8, 8), out_dim=3, columns=4, max_lateral=2)
    >>> list(net.sources(3)), net.columns_count
    ([1, 2], 4)
    >>> net.column_names(1)[-1]
    'laterals.1.1.0.weight'

    References
    ----------
    Rusu, A. A., Rabinowitz, N. C., Desjardins, G., et al. (2016). Progressive neural
    networks. arXiv:1606.04671.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "tanh",
        output_scale: float = 1.0,
        out_dim: int = 1,
        *,
        columns: int = 1,
        max_lateral: int | None = None,
    ) -> None:
        super().__init__()
        non_negative_int("columns", columns)
        non_negative_int("max_lateral", max_lateral, optional=True)
        with torch.device("meta"):  # validates the architecture, draws nothing
            PolicyNet(in_dim, hidden, activation, output_scale, out_dim)
        self.in_dim = in_dim
        self.hidden = tuple(hidden)
        self.activation = activation
        self.output_scale = float(output_scale)
        self.out_dim = out_dim
        self.max_lateral = max_lateral
        self.columns = nn.ModuleList()
        self.laterals = nn.ModuleList()
        self._layers: list[tuple[tuple[str, str, tuple[tuple[int, str], ...]], ...]] = []
        """Per column and linear layer: weight and bias names, and (source, lateral name)."""
        for _ in range(columns):
            self._append()

    @classmethod
    def like(
        cls, net: PolicyNet, *, columns: int = 1, max_lateral: int | None = None
    ) -> ProgressiveNet:
        """A progressive net whose columns have ``net``'s architecture (``norm="none"``)."""
        if not isinstance(net, PolicyNet) or net.norm != "none":
            raise ValueError(f"net must be a PolicyNet without normalisation, got {net!r}")
        return cls(
            net.in_dim,
            net.hidden,
            net.activation,
            net.output_scale,
            net.out_dim,
            columns=columns,
            max_lateral=max_lateral,
        )

    @property
    def columns_count(self) -> int:
        """Number of columns."""
        return len(self.columns)

    def _widths(self) -> tuple[int, ...]:
        return (self.in_dim, *self.hidden, self.out_dim)

    def sources(self, column: int) -> range:
        """The earlier columns whose hidden layers ``column`` reads."""
        first = 0 if self.max_lateral is None else max(0, column - self.max_lateral)
        return range(first, column)

    def _append(self) -> None:
        c = len(self.columns)
        widths = self._widths()
        with torch.device("meta"):
            self.columns.append(
                PolicyNet(
                    self.in_dim, self.hidden, self.activation, self.output_scale, self.out_dim
                )
            )
            self.laterals.append(
                nn.ModuleList(
                    nn.ModuleDict(
                        {str(j): nn.Linear(fan_in, fan_out, bias=False) for j in self.sources(c)}
                    )
                    for fan_in, fan_out in itertools.pairwise(widths[1:])
                )
            )
        self._layers.append(
            tuple(
                (
                    f"columns.{c}.layers.{2 * i}.weight",
                    f"columns.{c}.layers.{2 * i}.bias",
                    tuple((j, f"laterals.{c}.{i - 1}.{j}.weight") for j in self.sources(c))
                    if i > 0
                    else (),
                )
                for i in range(len(self.hidden) + 1)
            )
        )

    def grown(self) -> ProgressiveNet:
        """A new net with one more column; the existing columns' placeholders are shared, so
        growing costs the new column only."""
        new = ProgressiveNet(
            self.in_dim,
            self.hidden,
            self.activation,
            self.output_scale,
            self.out_dim,
            columns=0,
            max_lateral=self.max_lateral,
        )
        new.columns.extend(self.columns)
        new.laterals.extend(self.laterals)
        new._layers.extend(self._layers)
        new._append()
        return new

    def column_names(self, column: int) -> tuple[str, ...]:
        """Names of the parameters of ``column`` and of its incoming laterals."""
        self._check_column(column)
        own = [f"columns.{column}.{name}" for name, _ in self.columns[column].named_parameters()]
        lateral = [f"laterals.{column}.{n}" for n, _ in self.laterals[column].named_parameters()]
        return (*own, *lateral)

    def init_column(self, column: int, seed: int) -> dict[str, Tensor]:
        """Fresh weights for ``column`` and its laterals, drawn from ``seed`` only.

        The column's own layers are drawn as :func:`~adaptd.adapters.network.init_params`
        draws a PolicyNet's; the laterals into a layer as one linear layer over all the
        sources' units together, ``U(-1/sqrt(k h), 1/sqrt(k h))`` for ``k`` sources of width
        ``h``, so their sum has the spread of a single layer's input.
        """
        self._check_column(column)
        out = {
            f"columns.{column}.{k}": v for k, v in init_params(self.columns[column], seed).items()
        }
        generator = torch.Generator().manual_seed(int(seed) + 1)
        count = len(self.sources(column))
        for name, param in self.laterals[column].named_parameters():
            bound = 1.0 / math.sqrt(count * param.shape[1])
            value = torch.empty(param.shape, dtype=param.dtype)
            out[f"laterals.{column}.{name}"] = value.uniform_(-bound, bound, generator=generator)
        return out

    def parameter_count(self) -> int:
        """Scalars in all columns and laterals."""
        return sum(p.numel() for p in self.parameters())

    def run(self, params: Mapping[str, Tensor], x: Tensor, column: int | None = None) -> Tensor:
        """Output of ``column`` (default: the newest) on ``x`` ``(n, in_dim)``, with weights
        ``params``; columns after it are not computed. ``(n,)`` when ``out_dim == 1``."""
        last = len(self.columns) - 1 if column is None else column
        self._check_column(last)
        act = ACTIVATION_FNS[self.activation]
        depth = len(self.hidden)
        hiddens: list[list[Tensor]] = []  # hiddens[c][i]: output of column c's hidden layer i
        out = x
        for layers in self._layers[: last + 1]:
            h, own = x, []
            for i, (weight, bias, laterals) in enumerate(layers):
                z = nn.functional.linear(h, params[weight], params[bias])
                for j, lateral in laterals:
                    z = z + nn.functional.linear(hiddens[j][i - 1], params[lateral])
                if i < depth:
                    h = act(z)
                    own.append(h)
                else:
                    out = z
            hiddens.append(own)
        return out.squeeze(-1) if self.out_dim == 1 else out

    def forward(self, x: Tensor, column: int | None = None) -> Tensor:
        """:meth:`run` with the module's own parameters (under ``functional_call``, the
        weights it was given)."""
        return self.run(dict(self.named_parameters()), x, column)

    def _check_column(self, column: int) -> None:
        integer("column", column)
        if not 0 <= column < len(self.columns):
            raise ValueError(f"column must be in [0, {len(self.columns)}), got {column}")

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden}, activation={self.activation!r}, "
            f"out_dim={self.out_dim}, columns={len(self.columns)}, max_lateral={self.max_lateral}"
        )
