"""The learned embedding of the metric-based learners: an MLP, optionally after a small conv
stack, with meta-batch normalisation.

Every block is ``linear -> norm -> ReLU`` (``conv 3x3 -> norm -> ReLU -> max-pool 2`` in the conv
stack). Meta-batch normalisation uses the statistics of the episode being embedded and keeps no
running averages: the mean and variance come from the first ``n_stats`` rows (a learner passes
``cat(support, query)`` with ``n_stats = len(support)``) and are applied to every row. Taking
them from the support set only keeps a query's embedding independent of the other queries (one
query alone can be classified) and the same at meta-training and at test time. With
normalisation the linear and conv layers have no bias (the normalisation removes it).

The module fixes the architecture; the learners keep their weights outside it, as a dict of
tensors evaluated with ``torch.func.functional_call``, and never modify it.

Examples
--------
>>> import torch
>>> net = Embedding(in_dim=64, hidden=(16,), channels=(8, 8), image_shape=(8, 8), seed=0)
>>> net.out_dim
16
>>> episodes = torch.randn(3, 10, 64, generator=torch.Generator().manual_seed(0))
>>> net(episodes, n_stats=5).shape
torch.Size([3, 10, 16])
>>> a, b = init_params(net, seed=1), init_params(net, seed=1)
>>> list(a)[:4]
['convs.0.weight', 'convs.1.weight', 'conv_norms.0.weight', 'conv_norms.0.bias']
>>> all(torch.equal(a[k], b[k]) for k in a)
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import integer, is_int, positive_int

__all__ = ["Embedding", "init_params"]

_EPS = 1e-5


class Embedding(nn.Module):
    """MLP embedding (after an optional conv stack for images) with meta-batch normalisation.

    Parameters
    ----------
    in_dim
        Length of an input row. With ``channels``, a flattened single-channel image of
        ``image_shape`` (``in_dim == height * width``).
    hidden
        Widths of the fully connected blocks; the last is the embedding size. May be empty
        when ``channels`` is not (the embedding is then the flattened conv output).
    channels
        Output channels of the conv blocks; each halves the image (floor).
    image_shape
        ``(height, width)`` of the images; required with ``channels``.
    batch_norm
        Meta-batch normalisation after every linear and conv layer.
    seed
        Seed of the module's own parameters, drawn from a private generator (the global RNG
        is not used). The learners draw their own parameters with :func:`init_params`.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: tuple[int, ...] = (64, 64),
        *,
        channels: tuple[int, ...] = (),
        image_shape: tuple[int, int] | None = None,
        batch_norm: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        positive_int("in_dim", in_dim)
        hidden, channels = tuple(hidden), tuple(channels)
        if not all(is_int(h) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must hold positive integer widths, got {hidden!r}")
        if not all(is_int(c) and c >= 1 for c in channels):
            raise ValueError(f"channels must hold positive integer counts, got {channels!r}")
        if not hidden and not channels:
            raise ValueError("hidden and channels are both empty (use embedding=None instead)")
        if channels:
            if image_shape is None or len(tuple(image_shape)) != 2:
                raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
            image_shape = (int(image_shape[0]), int(image_shape[1]))
            if image_shape[0] * image_shape[1] != in_dim:
                raise ValueError(f"image_shape {image_shape} does not hold in_dim={in_dim} values")
            if min(image_shape) >> len(channels) < 1:
                raise ValueError(
                    f"image_shape {image_shape} is too small for {len(channels)} conv blocks"
                )
        integer("seed", seed)
        self.in_dim = in_dim
        self.hidden = hidden
        self.channels = channels
        self.image_shape = image_shape
        self.batch_norm = bool(batch_norm)
        self.seed = seed

        # Built on the meta device so construction draws nothing from the global RNG.
        with torch.device("meta"):
            self.convs = nn.ModuleList()
            self.conv_norms = nn.ModuleList()
            fan_in = 1
            for c in channels:
                self.convs.append(nn.Conv2d(fan_in, c, 3, padding=1, bias=not self.batch_norm))
                if self.batch_norm:
                    self.conv_norms.append(_MetaNorm(c))
                fan_in = c
            if channels:
                assert image_shape is not None
                fan_in = channels[-1] * (image_shape[0] >> len(channels))
                fan_in *= image_shape[1] >> len(channels)
            else:
                fan_in = in_dim
            self.linears = nn.ModuleList()
            self.norms = nn.ModuleList()
            for width in hidden:
                self.linears.append(nn.Linear(fan_in, width, bias=not self.batch_norm))
                if self.batch_norm:
                    self.norms.append(_MetaNorm(width))
                fan_in = width
        self.out_dim = fan_in
        self.to_empty(device="cpu")
        with torch.no_grad():
            for name, value in init_params(self, seed).items():
                self.get_parameter(name).copy_(value)

    def forward(self, x: Tensor, n_stats: int | None = None) -> Tensor:
        """``(n, in_dim) -> (n, out_dim)``, or ``(T, n, in_dim) -> (T, n, out_dim)`` for a
        batch of ``T`` episodes, each normalised with the statistics of its first ``n_stats``
        rows (all rows when None)."""
        single = x.ndim == 2
        h = x.unsqueeze(0) if single else x
        t, n = h.shape[0], h.shape[1]
        k = n if n_stats is None else n_stats
        if self.channels:
            assert self.image_shape is not None
            h = h.reshape(t * n, 1, *self.image_shape)
            for j, conv in enumerate(self.convs):
                h = conv(h)
                if self.batch_norm:
                    h = self.conv_norms[j](h.reshape(t, n, *h.shape[1:]), k).flatten(0, 1)
                h = F.max_pool2d(F.relu(h), 2)
            h = h.reshape(t, n, -1)
        for j, linear in enumerate(self.linears):
            h = linear(h)
            if self.batch_norm:
                h = self.norms[j](h, k)
            h = F.relu(h)
        return h.squeeze(0) if single else h

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden}, channels={self.channels}, "
            f"image_shape={self.image_shape}, batch_norm={self.batch_norm}"
        )


class _MetaNorm(nn.Module):
    """Per-feature normalisation with the statistics of each episode's first rows, then a
    learned affine map. Input ``(T, n, features, *spatial)``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features))
        self.bias = nn.Parameter(torch.empty(features))

    def forward(self, h: Tensor, n_stats: int) -> Tensor:
        dims = (1, *range(3, h.ndim))
        head = h[:, :n_stats]
        mean = head.mean(dim=dims, keepdim=True)
        var = head.var(dim=dims, unbiased=False, keepdim=True)
        shape = (1, 1, -1) + (1,) * (h.ndim - 3)
        return (h - mean) * torch.rsqrt(var + _EPS) * self.weight.view(shape) + self.bias.view(
            shape
        )


def init_params(module: nn.Module, seed: int | torch.Generator) -> dict[str, Tensor]:
    """Fresh parameters for ``module`` (keys as ``module.named_parameters()``), drawn from a
    private generator with PyTorch's default distributions: ``U(±1/sqrt(fan_in))`` for linear
    and conv layers, ``U(±1/sqrt(hidden_size))`` for LSTMs, ones and zeros for normalisation.

    ``seed`` may be a ``torch.Generator`` to draw several modules from one stream.
    """
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for prefix, sub in module.named_modules():
        for name, param in sub.named_parameters(recurse=False):
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(sub, _MetaNorm):
                out[key] = torch.ones(param.shape) if name == "weight" else torch.zeros(param.shape)
                continue
            if isinstance(sub, nn.Linear | nn.Conv2d):
                fan_in = sub.weight[0].numel()
            elif isinstance(sub, nn.LSTM | nn.LSTMCell):
                fan_in = sub.hidden_size
            else:
                raise ValueError(f"no initialiser for {type(sub).__name__} parameter {key}")
            bound = 1.0 / math.sqrt(fan_in)
            out[key] = torch.empty(param.shape).uniform_(-bound, bound, generator=generator)
    return out
