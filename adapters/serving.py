"""A torch-free forward pass of the policy network, in numpy.

Downstream clients serve published policies with it, and the daemon uses it for its per-event
(prequential) predictions on the asyncio loop, where torch must not run. It computes exactly
``PolicyNet.forward`` from the parameter dict (names and shapes as documented in
:mod:`adaptd.adapters.network`), in float64.

This module must not import torch, directly or through the package: ``adaptd.adapters``
resolves its torch-backed names lazily (PEP 562), so ``import adaptd.adapters.serving`` stays
torch-free (a test checks it in a fresh interpreter).

Examples
--------
>>> import numpy as np
>>> params = {
...     "layers.0.weight": np.array([[1.0, 0.0], [0.0, 2.0]]),
...     "layers.0.bias": np.zeros(2),
...     "layers.2.weight": np.array([[1.0, 1.0]]),
...     "layers.2.bias": np.array([0.5]),
... }
>>> policy = NumpyPolicy.from_params(params, activation="relu")
>>> policy.in_dim, policy.hidden
(2, (2,))
>>> policy.predict(np.array([[1.0, 1.0], [-1.0, -1.0]]))
array([3.5, 0.5])
>>> policy.predict(np.array([1.0, 1.0]))
array(3.5)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["NUMPY_ACTIVATIONS", "NumpyPolicy"]

NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
}
"""The activations of ``PolicyNet``, by the same names."""

_NAME = re.compile(r"layers\.(\d+)\.(weight|bias)")


class NumpyPolicy:
    """The policy MLP as numpy arrays: ``predict(x) = PolicyNet(x)`` for the same weights.

    Parameters
    ----------
    layers
        ``(weight, bias)`` per linear layer in order, ``weight`` shaped ``(out, in)`` as in
        torch; the last layer's width is the policy's ``out_dim`` (1 for a regression, one
        logit a class for a classifier).
    activation
        Name in :data:`NUMPY_ACTIVATIONS`, applied after every layer but the last.
    skip
        0, or ``out_dim``: the last ``skip`` inputs are added to the outputs (``PolicyNet``'s
        ``skip``).
    """

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        activation: str = "tanh",
        skip: int = 0,
    ) -> None:
        if activation not in NUMPY_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(NUMPY_ACTIVATIONS)}, got {activation!r}"
            )
        if not layers:
            raise ValueError("layers is empty: a policy needs at least one linear layer")
        checked: list[tuple[np.ndarray, np.ndarray]] = []
        fan_in = None
        for j, (weight, bias) in enumerate(layers):
            w = np.asarray(weight, dtype=np.float64)
            b = np.asarray(bias, dtype=np.float64)
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(
                    f"layer {j}: weight must be (out, in) and bias (out,), "
                    f"got {w.shape} and {b.shape}"
                )
            if fan_in is not None and w.shape[1] != fan_in:
                raise ValueError(f"layer {j}: takes {w.shape[1]} inputs, previous gives {fan_in}")
            fan_in = w.shape[0]
            # Transposed once here so predict is x @ w_t + b with no per-call copies.
            checked.append((np.ascontiguousarray(w.T), b))
        self.activation = activation
        self.in_dim = int(checked[0][0].shape[0])
        self.hidden = tuple(int(w_t.shape[1]) for w_t, _ in checked[:-1])
        self.out_dim = int(fan_in)
        if skip not in (0, self.out_dim) or skip > self.in_dim:
            raise ValueError(f"skip must be 0 or out_dim ({self.out_dim}) <= in_dim, got {skip!r}")
        self.skip = int(skip)
        self._layers = checked
        self._act = NUMPY_ACTIVATIONS[activation]

    @classmethod
    def from_params(
        cls, params: Mapping[str, np.ndarray], activation: str = "tanh", skip: int = 0
    ) -> NumpyPolicy:
        """Build from a ``PolicyNet`` parameter dict (``layers.{2j}.weight`` / ``.bias``)."""
        found: dict[int, dict[str, np.ndarray]] = {}
        for name, value in params.items():
            match = _NAME.fullmatch(name)
            if match is None:
                raise ValueError(
                    f"unexpected parameter name {name!r} (want layers.<i>.weight/bias)"
                )
            found.setdefault(int(match.group(1)), {})[match.group(2)] = np.asarray(value)
        for index, parts in sorted(found.items()):
            if "weight" in parts and parts["weight"].ndim == 1:
                raise ValueError(
                    f"layers.{index} is a normalisation layer (PolicyNet(norm='batch')): "
                    "NumpyPolicy serves only norm='none' nets, since meta-batch normalisation "
                    "needs the statistics of a batch, not one feature vector"
                )
        indices = sorted(found)
        if indices != list(range(0, 2 * len(indices), 2)):
            raise ValueError(f"linear layers must be layers.0, layers.2, ...; got {indices}")
        layers = []
        for index in indices:
            parts = found[index]
            if set(parts) != {"weight", "bias"}:
                raise ValueError(f"layers.{index} needs both weight and bias, got {sorted(parts)}")
            layers.append((parts["weight"], parts["bias"]))
        return cls(layers, activation=activation, skip=skip)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(n, in_dim) -> (n,)``, or one feature vector ``(in_dim,) -> ()``; with
        ``out_dim > 1`` the raw outputs (logits) ``(n, out_dim)`` or ``(out_dim,)``."""
        h = np.asarray(x, dtype=np.float64)
        if h.ndim not in (1, 2) or h.shape[-1] != self.in_dim:
            raise ValueError(
                f"x must have shape (n, {self.in_dim}) or ({self.in_dim},), got {h.shape}"
            )
        x, last = h, len(self._layers) - 1
        for j, (w_t, b) in enumerate(self._layers):
            h = h @ w_t + b
            if j < last:
                h = self._act(h)
        if self.skip:
            h = h + x[..., -self.skip :]
        return np.asarray(h[..., 0]) if self.out_dim == 1 else h

    def __repr__(self) -> str:
        return (
            f"NumpyPolicy(in_dim={self.in_dim}, hidden={self.hidden}, "
            f"out_dim={self.out_dim}, activation={self.activation!r}"
            + (f", skip={self.skip})" if self.skip else ")")
        )
