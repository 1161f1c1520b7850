"""The policy network: a small MLP from a stream's feature vector to its expected scaled return.

The module only fixes the architecture. Weights live outside it, as a dict of tensors
("fast weights", see :mod:`adaptd.adapters.fast_weights`), so one module serves every
adapted policy and is never mutated.

Parameter names are part of the wire format (the numpy server and the published policy
messages use them). For ``hidden = (h_1, ..., h_L)`` there are ``L + 1`` linear layers; linear
layer ``j`` (``j = 0 .. L``) is ``layers.{2j}`` because an activation sits between two linear
layers in the ``torch.nn.Sequential``:

============================  ======================  =======================================
name                          shape                   role
============================  ======================  =======================================
``layers.{2j}.weight``        ``(out_j, in_j)``       ``y = x @ weight.T + bias``
``layers.{2j}.bias``          ``(out_j,)``
============================  ======================  =======================================

with ``in_0 = in_dim``, ``out_j = in_{j+1} = h_{j+1}`` and ``out_L = 1``.

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
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "PolicyNet", "init_params"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
"""Activation names understood by PolicyNet (and, with the same names, by NumpyPolicy)."""


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
    """

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...] = (32, 32),
        activation: str = "tanh",
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ValueError(f"in_dim must be a positive integer, got {in_dim!r}")
        hidden = tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must hold positive integer widths, got {hidden!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= output_scale <= 1.0:
            raise ValueError(f"output_scale must be in [0, 1], got {output_scale!r}")
        self.in_dim = in_dim
        self.hidden = hidden
        self.activation = activation
        self.output_scale = float(output_scale)
        widths = (in_dim, *hidden, 1)
        modules: list[nn.Module] = []
        for j, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            if j > 0:
                modules.append(ACTIVATIONS[activation]())
            modules.append(nn.Linear(fan_in, fan_out))
        self.layers = nn.Sequential(*modules)
        if self.output_scale < 1.0:
            last = self.layers[-1]
            with torch.no_grad():
                last.weight.mul_(self.output_scale)
                last.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``(n, in_dim) -> (n,)``; also ``(in_dim,) -> ()``."""
        return self.layers(x).squeeze(-1)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden}, activation={self.activation!r}, "
            f"output_scale={self.output_scale}"
        )


def init_params(net: PolicyNet, seed: int) -> dict[str, Tensor]:
    """Fresh, seeded parameters for ``net`` as a detached dict (keys as ``net.named_parameters()``).

    Uses the ``torch.nn.Linear`` default distribution, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    for weights and biases, drawn from a private generator: the result depends on ``seed``
    only, never on the global RNG, and ``net`` itself is left untouched.

    >>> net = PolicyNet(2, (3,))
    >>> a, b = init_params(net, seed=7), init_params(net, seed=7)
    >>> all(torch.equal(a[k], b[k]) for k in a)
    True
    >>> torch.equal(a["layers.0.weight"], init_params(net, seed=8)["layers.0.weight"])
    False
    """
    generator = torch.Generator().manual_seed(int(seed))
    out: dict[str, Tensor] = {}
    last = f"layers.{len(net.layers) - 1}"
    for name, param in net.named_parameters():
        layer = name.rsplit(".", 1)[0]
        fan_in = net.get_submodule(layer).in_features
        bound = 1.0 / math.sqrt(fan_in)
        value = torch.empty(param.shape, dtype=param.dtype)
        out[name] = value.uniform_(-bound, bound, generator=generator)
        if layer == last and net.output_scale < 1.0:
            out[name] = out[name] * net.output_scale if name.endswith("weight") else out[name] * 0
    return out
