"""The progressive network's architecture: parameter names and count, the forward against a
direct per-column computation, ``functional_call``, and that only the columns asked for are
computed."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.func import functional_call

from adaptd.adapters.continual.columns import ProgressiveNet
from adaptd.adapters.network import PolicyNet, forward


def weights(net: ProgressiveNet, seed: int = 0) -> dict[str, torch.Tensor]:
    params: dict[str, torch.Tensor] = {}
    for c in range(net.columns_count):
        params.update(net.init_column(c, seed=seed + c))
    return params


def expected_count(
    in_dim: int, hidden: tuple[int, ...], out: int, columns: int, k: int | None
) -> int:
    """``C P + Q sum_c min(c, k)``: own layers per column, laterals per source."""
    widths = (in_dim, *hidden, out)
    per_column = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    per_source = sum(a * b for a, b in itertools.pairwise(widths[1:]))
    sources = sum(c if k is None else min(c, k) for c in range(columns))
    return columns * per_column + per_source * sources


@pytest.mark.parametrize("max_lateral", [None, 0, 1, 3])
@pytest.mark.parametrize("columns", [1, 2, 5])
def test_parameter_count_follows_the_formula(columns: int, max_lateral: int | None) -> None:
    net = ProgressiveNet(5, (7, 6), out_dim=3, columns=columns, max_lateral=max_lateral)
    expected = expected_count(5, (7, 6), 3, columns, max_lateral)
    assert net.parameter_count() == expected
    assert sum(v.numel() for v in weights(net).values()) == expected


@pytest.mark.parametrize("columns", [1, 10, 30])
def test_digits_size_count_is_quadratic_with_every_lateral(columns: int) -> None:
    net = ProgressiveNet(64, (100, 100), out_dim=10, columns=columns)
    assert net.parameter_count() == 17_610 * columns + 11_000 * columns * (columns - 1) // 2
    limited = ProgressiveNet(64, (100, 100), out_dim=10, columns=columns, max_lateral=1)
    assert limited.parameter_count() == 17_610 * columns + 11_000 * (columns - 1)


def test_parameters_are_placeholders_and_names_follow_the_layout() -> None:
    net = ProgressiveNet(4, (3, 3), out_dim=2, columns=3, max_lateral=1)
    assert all(p.device.type == "meta" for p in net.parameters())
    names = {n for n, _ in net.named_parameters()}
    assert "columns.2.layers.4.weight" in names
    assert "laterals.2.1.1.weight" in names  # into layer 2 of column 2, from column 1
    assert "laterals.2.1.0.weight" not in names  # column 0 is beyond max_lateral
    assert set(net.column_names(2)) == {n for n in names if n.split(".")[1] == "2"}
    assert set(weights(net)) == names


def direct(net: ProgressiveNet, params: dict[str, torch.Tensor], x: torch.Tensor, column: int):
    """Column ``column`` computed column by column, each earlier one from scratch."""
    act = torch.relu if net.activation == "relu" else torch.tanh
    cache: dict[int, list[torch.Tensor]] = {}

    def hiddens(c: int) -> list[torch.Tensor]:
        if c not in cache:
            h, out = x, []
            for i in range(len(net.hidden)):
                z = h @ params[f"columns.{c}.layers.{2 * i}.weight"].T
                z = z + params[f"columns.{c}.layers.{2 * i}.bias"]
                if i > 0:
                    for j in net.sources(c):
                        z = z + hiddens(j)[i - 1] @ params[f"laterals.{c}.{i - 1}.{j}.weight"].T
                h = act(z)
                out.append(h)
            cache[c] = out
        return cache[c]

    depth = len(net.hidden)
    h = hiddens(column)[-1]
    z = h @ params[f"columns.{column}.layers.{2 * depth}.weight"].T
    z = z + params[f"columns.{column}.layers.{2 * depth}.bias"]
    for j in net.sources(column):
        z = z + hiddens(j)[-1] @ params[f"laterals.{column}.{depth - 1}.{j}.weight"].T
    return z


@pytest.mark.parametrize(("activation", "max_lateral"), [("tanh", None), ("relu", 2)])
def test_run_matches_a_direct_computation(activation: str, max_lateral: int | None) -> None:
    net = ProgressiveNet(4, (6, 5), activation, out_dim=3, columns=4, max_lateral=max_lateral)
    params = weights(net)
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
    for c in range(4):
        torch.testing.assert_close(net.run(params, x, c), direct(net, params, x, c))
    assert torch.equal(net.run(params, x), net.run(params, x, 3))
    assert torch.equal(functional_call(net, params, (x,)), net.run(params, x))


def test_one_column_is_the_policy_net() -> None:
    net = ProgressiveNet(4, (6,), "relu", out_dim=1, columns=1)
    params = net.init_column(0, seed=3)
    x = torch.randn(5, 4)
    column = PolicyNet(4, (6,), "relu", out_dim=1)
    plain = {k.removeprefix("columns.0."): v for k, v in params.items()}
    assert net.run(params, x).shape == (5,)
    assert torch.equal(net.run(params, x), forward(column, plain, x))


def test_only_columns_up_to_the_one_asked_are_computed() -> None:
    net = ProgressiveNet(4, (6, 6), out_dim=2, columns=3)
    params = weights(net)
    x = torch.randn(3, 4)
    early = {k: v for k, v in params.items() if k.split(".")[1] in ("0", "1")}
    assert torch.equal(net.run(early, x, 1), net.run(params, x, 1))
    with pytest.raises(KeyError):
        net.run(early, x, 2)


def test_grown_adds_one_column_and_leaves_the_original() -> None:
    net = ProgressiveNet(4, (6,), out_dim=2, columns=2)
    grown = net.grown()
    assert (net.columns_count, grown.columns_count) == (2, 3)
    assert grown.parameter_count() == expected_count(4, (6,), 2, 3, None)
    assert set(dict(net.named_parameters())) < set(dict(grown.named_parameters()))


def test_init_column_is_seeded() -> None:
    net = ProgressiveNet(4, (6, 6), out_dim=2, columns=3)
    a, b, c = net.init_column(2, seed=5), net.init_column(2, seed=5), net.init_column(2, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["laterals.2.0.1.weight"], c["laterals.2.0.1.weight"])
    state = torch.get_rng_state()
    net.grown().init_column(3, seed=1)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is not drawn from


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"columns": -1}, "columns"),
        ({"max_lateral": -1}, "max_lateral"),
        ({"hidden": (0,)}, "hidden"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        ProgressiveNet(**{"in_dim": 3, **kwargs})  # type: ignore[arg-type]
    net = ProgressiveNet(3, (4,), columns=2)
    with pytest.raises(ValueError, match="column"):
        net.run(weights(net), torch.zeros(1, 3), column=2)
    with pytest.raises(ValueError, match="norm"):
        ProgressiveNet.like(PolicyNet(3, (4,), norm="batch"))
