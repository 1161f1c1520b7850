"""The embedding: shapes, meta-batch normalisation from the first rows only, seeded init."""

from __future__ import annotations

import math

import pytest
import torch

from adaptd.adapters.fewshot import Embedding
from adaptd.adapters.fewshot.embedding import init_params


def test_mlp_and_conv_shapes_single_and_batched() -> None:
    g = torch.Generator().manual_seed(0)
    for net in (
        Embedding(64, (16, 12)),
        Embedding(64, (), channels=(4, 6), image_shape=(8, 8)),
        Embedding(64, (10,), channels=(4,), image_shape=(8, 8), batch_norm=False),
    ):
        x = torch.randn(3, 9, 64, generator=g)
        out = net(x, n_stats=5)
        assert out.shape == (3, 9, net.out_dim)
        torch.testing.assert_close(net(x[1], n_stats=5), out[1])  # episodes are independent
    assert Embedding(64, (16, 12)).out_dim == 12
    assert Embedding(64, (), channels=(4, 6), image_shape=(8, 8)).out_dim == 6 * 2 * 2


@pytest.mark.parametrize("conv", [False, True])
def test_statistics_come_from_the_first_rows_only(conv: bool) -> None:
    kwargs = {"channels": (4,), "image_shape": (4, 4)} if conv else {}
    net = Embedding(16, (8,), **kwargs)
    g = torch.Generator().manual_seed(1)
    support, queries = torch.randn(6, 16, generator=g), torch.randn(5, 16, generator=g)
    out = net(torch.cat((support, queries)), n_stats=6)
    other = net(torch.cat((support, 10 * queries[:2])), n_stats=6)
    torch.testing.assert_close(other[:6], out[:6])  # queries do not move the support
    torch.testing.assert_close(net(torch.cat((support, queries[3:4])), n_stats=6)[6], out[9])
    # ... but the support set does: a different support set changes a query's embedding.
    shifted = net(torch.cat((support + 1.0, queries)), n_stats=6)
    assert not torch.allclose(shifted[6:], out[6:])
    assert list(net.buffers()) == []  # no running statistics


def test_meta_norm_standardises_the_statistics_rows() -> None:
    net = Embedding(5, (7,))
    h = torch.randn(2, 10, 7, generator=torch.Generator().manual_seed(2)) * 3 + 4
    out = net.norms[0](h, 6)  # weight 1, bias 0 at initialisation
    torch.testing.assert_close(out[:, :6].mean(dim=1), torch.zeros(2, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out[:, :6].var(dim=1, unbiased=False), torch.ones(2, 7), atol=1e-3, rtol=0
    )


def test_layers_have_no_bias_under_normalisation() -> None:
    names = dict(Embedding(4, (3,)).named_parameters())
    assert sorted(names) == ["linears.0.weight", "norms.0.bias", "norms.0.weight"]
    names = dict(Embedding(4, (3,), batch_norm=False).named_parameters())
    assert sorted(names) == ["linears.0.bias", "linears.0.weight"]


def test_seeded_construction_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = Embedding(6, (5, 4), seed=3), Embedding(6, (5, 4), seed=3), Embedding(6, (5, 4))
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.linears[0].weight, c.linears[0].weight)


def test_init_params_follow_the_pytorch_default_bounds() -> None:
    net = Embedding(9, (5,), channels=(3,), image_shape=(3, 3), batch_norm=False)
    params = init_params(net, seed=0)
    assert list(params) == [name for name, _ in net.named_parameters()]
    for name, bound in [("convs.0.weight", 1 / 3), ("linears.0.weight", 1 / math.sqrt(3))]:
        assert float(params[name].abs().max()) <= bound
        assert float(params[name].abs().max()) > 0.5 * bound
    normed = init_params(Embedding(4, (3,)), seed=0)
    assert torch.equal(normed["norms.0.weight"], torch.ones(3))
    assert torch.equal(normed["norms.0.bias"], torch.zeros(3))
    with pytest.raises(ValueError, match="no initialiser for GRU"):
        init_params(torch.nn.GRU(2, 2), seed=0)


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        ((0,), {}, "in_dim"),
        ((4, (3, 0)), {}, "hidden"),
        ((4, ()), {}, "both empty"),
        ((16,), {"channels": (2,)}, "image_shape"),
        ((15,), {"channels": (2,), "image_shape": (4, 4)}, "in_dim=15"),
        ((4,), {"channels": (2, 2, 2), "image_shape": (2, 2)}, "too small"),
        ((4,), {"channels": (-1,), "image_shape": (2, 2)}, "channels"),
        ((4,), {"seed": None}, "seed"),
    ],
)
def test_invalid_arguments_are_named(args: tuple, kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Embedding(*args, **kwargs)
