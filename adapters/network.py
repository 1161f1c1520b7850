"""The policy network: a small MLP from a stream's feature vector to its expected scaled return
(or, with ``out_dim > 1``, to class logits).

The module only fixes the architecture. Weights live outside it, as a dict of tensors
("fast weights", see :mod:`adaptd.adapters.fast_weights`), so one module serves every
adapted policy and is never mutated.

Parameter names are part of the wire format (the numpy server and the published policy
messages use them). For ``hidden = (h_1, ..., h_L)`` and the default ``norm="none"`` there are
``L + 1`` linear layers; linear layer ``j`` (``j = 0 .. L``) is ``layers.{2j}`` because an
activation sits between two linear layers in the ``torch.nn.Sequential``:

============================  ======================  =======================================
name                          shape                   role
============================  ======================  =======================================
``layers.{2j}.weight``        ``(out_j, in_j)``       ``y = x @ weight.T + bias``
``layers.{2j}.bias``          ``(out_j,)``
============================  ======================  =======================================

with ``in_0 = in_dim``, ``out_j = in_{j+1} = h_{j+1}`` and ``out_L = out_dim``. With
``norm="batch"`` a :class:`MetaBatchNorm` follows every hidden linear layer, so linear layer
``j`` is ``layers.{3j}`` and its normalisation ``layers.{3j+1}`` (affine ``weight`` and ``bias``
of shape ``(h_{j+1},)``, fast weights like the rest); a hidden linear layer then has no bias,
since the normalisation would subtract it again (its gradient is zero).

:func:`forward` computes the same function as the module straight from a parameter dict with
explicit matrix products, for one task (``x`` of shape ``(n, in_dim)``) or for a stack of tasks
(``x`` of shape ``(T, n, in_dim)``, every parameter with a leading ``T``, ``torch.baddbmm``).
It is the fast path of the learners; ``torch.func.functional_call`` on the module is the
generic one, and tests hold the two equal.

Examples
--------
>>> net = PolicyNet(in_dim=3, hidden=(4,))
>>> for name, p in init_params(net, seed=0).items():
...     print(name, tuple(p.shape))
layers.0.weight (4, 3)
layers.0.bias (4,)
layers.2.weight (1, 4)
layers.2.bias (1,)
>>> import torch
>>> net(torch.zeros(5, 3)).shape
torch.Size([5])
>>> classifier = PolicyNet(in_dim=3, hidden=(4,), out_dim=5, norm="batch")
>>> [name for name, _ in classifier.named_parameters()]
['layers.0.weight', 'layers.1.weight', 'layers.1.bias', 'layers.3.weight', 'layers.3.bias']
>>> forward(classifier, init_params(classifier, seed=0), torch.randn(7, 3)).shape
torch.Size([7, 5])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from .checks import is_int, one_of, positive_int
from .norm import MetaBatchNorm, batch_norm

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_FNS",
    "NORMS",
    "MetaBatchNorm",
    "PolicyNet",
    "batch_norm",
    "features",
    "forward",
    "head",
    "init_params",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
"""Activation names understood by PolicyNet (and, with the same names, by NumpyPolicy)."""

Norm = Literal["none", "batch"]
NORMS: tuple[Norm, ...] = ("none", "batch")


class PolicyNet(nn.Module):
    """MLP over the feature vector predicting the (volatility-scaled) forward return.

    Parameters
    ----------
    in_dim
        Length of the feature vector.
    hidden
        Hidden layer widths; ``()`` gives a linear model.
    activation
        One of :data:`ACTIVATIONS`, applied after every hidden layer.
    output_scale
        Scale of the output layer's initial weights relative to the ``nn.Linear`` default
        (its bias starts at zero when below 1). A small value makes a fresh network predict
        close to zero, the no-skill forecast of a return, while gradients still reach every
        layer; 1 keeps the default initialisation.
    out_dim
        Outputs. 1 (the default) gives ``(n,)`` predictions; more gives ``(n, out_dim)``
        logits (classification with ``loss="cross_entropy"``), never squeezed.
    norm
        "none", or "batch" for a :class:`MetaBatchNorm` after every hidden linear layer
        (before its activation).
    skip
        0, or ``out_dim``: the last ``skip`` inputs are added to the outputs, so that the
        network learns a correction to an offset its inputs carry (an ensemble's log-weights,
        say) and a network that outputs 0 forwards the offset unchanged. They are inputs of
        the first layer as well.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "tanh",
        output_scale: float = 1.0,
        out_dim: int = 1,
        norm: Norm = "none",
        skip: int = 0,
    ) -> None:
        super().__init__()
        positive_int("in_dim", in_dim)
        hidden = tuple(hidden)
        if not all(is_int(h) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must hold positive integer widths, got {hidden!r}")
        one_of("activation", activation, sorted(ACTIVATIONS))
        if not 0.0 <= output_scale <= 1.0:
            raise ValueError(f"output_scale must be in [0, 1], got {output_scale!r}")
        positive_int("out_dim", out_dim)
        one_of("norm", norm, NORMS)
        if skip not in (0, out_dim) or skip > in_dim:
            raise ValueError(f"skip must be 0 or out_dim ({out_dim}) <= in_dim, got {skip!r}")
        self.skip = skip
        self.in_dim = in_dim
        self.hidden = hidden
        self.activation = activation
        self.output_scale = float(output_scale)
        self.out_dim = out_dim
        self.norm: Norm = norm
        widths = (in_dim, *hidden, out_dim)
        modules: list[nn.Module] = []
        plan: list[tuple[str, str]] = []
        for j, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            if j > 0:
                if norm == "batch":
                    plan.append(("norm", f"layers.{len(modules)}"))
                    modules.append(MetaBatchNorm(fan_in))
                plan.append(("act", activation))
                modules.append(ACTIVATIONS[activation]())
            bias = norm == "none" or j == len(hidden)
            plan.append(("linear" if bias else "matmul", f"layers.{len(modules)}"))
            modules.append(nn.Linear(fan_in, fan_out, bias=bias))
        self.layers = nn.Sequential(*modules)
        self.plan: tuple[tuple[str, str], ...] = tuple(plan)
        """``(kind, name)`` per layer, kind "linear", "matmul" (linear without bias), "norm" or
        "act"; what :func:`forward` runs (for "act" the name is the activation)."""
        self.head = f"layers.{len(modules) - 1}"
        """Module name of the output (last linear) layer."""
        if self.output_scale < 1.0:
            last = self.layers[-1]
            with torch.no_grad():
                last.weight.mul_(self.output_scale)
                last.bias.zero_()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(n, in_dim) -> (n,)`` (or ``(n, out_dim)``); also ``(in_dim,) -> ()``.

        ``mask`` (``(n,)``, row weights) restricts batch-norm statistics to rows with a positive
        weight; it has no effect without normalisation.
        """
        if x.ndim == 1 and self.norm != "none":
            return self.forward(x.unsqueeze(0), mask).squeeze(0)
        h = x
        for module in self.layers:
            h = module(h, mask) if isinstance(module, MetaBatchNorm) else module(h)
        if self.skip:
            h = h + x[..., -self.skip :]
        return h.squeeze(-1) if self.out_dim == 1 else h

    def with_hidden(self, hidden: tuple[int, ...]) -> PolicyNet:
        """This architecture with the hidden widths ``hidden``, built under a forked RNG so that
        the global RNG does not move (the weights that count live in parameter dicts).

        >>> PolicyNet(3, (4,), activation="relu").with_hidden((6, 5)).hidden
        (6, 5)
        """
        with torch.random.fork_rng(devices=[]):
            return PolicyNet(
                self.in_dim,
                hidden,
                self.activation,
                self.output_scale,
                self.out_dim,
                self.norm,
                self.skip,
            )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden}, activation={self.activation!r}, "
            f"output_scale={self.output_scale}, out_dim={self.out_dim}, norm={self.norm!r}"
            + (f", skip={self.skip}" if self.skip else "")
        )


ACTIVATION_FNS = {"tanh": torch.tanh, "relu": torch.relu}
"""The functions behind :data:`ACTIVATIONS`, for forwards written out from parameter dicts."""


def forward(
    net: PolicyNet, params: Mapping[str, Tensor], x: Tensor, mask: Tensor | None = None
) -> Tensor:
    """``net`` run with ``params``, written out as matrix products (no module calls).

    ``x`` is ``(n, in_dim)`` or a stack of tasks ``(T, n, in_dim)``; each parameter is either
    unstacked (shared by every task) or stacked along a leading ``T`` (one copy a task,
    ``torch.baddbmm``). Returns what ``PolicyNet.forward`` returns, per task when stacked.
    ``mask`` as in :func:`batch_norm`. No argument checks: this is the hot path.
    """
    return head(net, params, features(net, params, x, mask))


def features(
    net: PolicyNet, params: Mapping[str, Tensor], x: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Everything :func:`forward` computes before the output layer: the last hidden layer's
    activations (``x`` itself for a linear model), followed by the ``net.skip`` inputs that
    :func:`head` adds to its outputs."""
    h = x
    for kind, name in net.plan[:-1]:
        if kind == "linear":
            h = _linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
        elif kind == "matmul":
            h = _linear(h, params[f"{name}.weight"], None)
        elif kind == "norm":
            h = batch_norm(h, params[f"{name}.weight"], params[f"{name}.bias"], mask)
        else:
            h = ACTIVATION_FNS[name](h)
    if net.skip:
        # Carried past the hidden layers so that a head adapted alone (ANIL) adds them too.
        h = torch.cat([h, x[..., -net.skip :]], dim=-1)
    return h


def head(net: PolicyNet, params: Mapping[str, Tensor], h: Tensor) -> Tensor:
    """The output layer on :func:`features`, squeezed to ``(..., n)`` when ``out_dim == 1``."""
    skip = net.skip
    if skip:
        h, offset = h[..., :-skip], h[..., -skip:]
    out = _linear(h, params[f"{net.head}.weight"], params[f"{net.head}.bias"])
    if skip:
        out = out + offset
    return out.squeeze(-1) if net.out_dim == 1 else out


def _linear(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if weight.ndim == 3:  # one weight matrix a task
        if bias is None:
            return torch.bmm(h, weight.transpose(-1, -2))
        return torch.baddbmm(bias.unsqueeze(-2), h, weight.transpose(-1, -2))
    return torch.nn.functional.linear(h, weight, bias)


def init_params(net: PolicyNet, seed: int) -> dict[str, Tensor]:
    """Fresh, seeded parameters for ``net`` as a detached dict (keys as ``net.named_parameters()``).

    Uses the ``torch.nn.Linear`` default distribution, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    for weights and biases, drawn from a private generator: the result depends on ``seed``
    only, never on the global RNG, and ``net`` itself is left untouched. Normalisation layers
    start as the identity affine map (weight 1, bias 0) and draw nothing, so the linear layers
    of a net with and without ``norm`` get the same values from the same seed.

    >>> net = PolicyNet(2, (3,))
    >>> a, b = init_params(net, seed=7), init_params(net, seed=7)
    >>> all(torch.equal(a[k], b[k]) for k in a)
    True
    >>> torch.equal(a["layers.0.weight"], init_params(net, seed=8)["layers.0.weight"])
    False
    """
    generator = torch.Generator().manual_seed(int(seed))
    out: dict[str, Tensor] = {}
    for name, param in net.named_parameters():
        layer, kind = name.rsplit(".", 1)
        module = net.get_submodule(layer)
        if isinstance(module, MetaBatchNorm):
            fill = torch.ones if kind == "weight" else torch.zeros
            out[name] = fill(param.shape, dtype=param.dtype)
            continue
        bound = 1.0 / math.sqrt(module.in_features)
        value = torch.empty(param.shape, dtype=param.dtype)
        out[name] = value.uniform_(-bound, bound, generator=generator)
        if layer == net.head and net.output_scale < 1.0:
            out[name] = out[name] * net.output_scale if kind == "weight" else out[name] * 0
    return out
