"""The diagonal Fisher information against an explicit per-example autograd loop (empirical and
true, cross-entropy and MSE, a task's classes, a subset of parameters), its invariance to the
chunk size, and the quadratic penalty."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from adaptd.adapters.continual.importance import FisherKind, fisher_diagonal, quadratic_penalty
from adaptd.adapters.continual.protocol import ContinualModel
from adaptd.adapters.network import PolicyNet, init_params

Params = dict[str, torch.Tensor]


def make_model(out_dim: int) -> ContinualModel:
    net = PolicyNet(3, (5,), out_dim=out_dim)
    loss = "cross_entropy" if out_dim > 1 else "mse"
    return ContinualModel(net, init_params(net, seed=0), loss=loss)


def make_data(out_dim: int, n: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, generator=g)
    if out_dim > 1:
        return x, torch.randint(0, out_dim, (n,), generator=g)
    return x, torch.randn(n, generator=g)


def score_sq(
    model: ContinualModel, xi: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> Params:
    """Squared gradient of ``fn(output)`` for one example."""
    params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    value = fn(model.output(params, xi[None]).reshape(-1))
    grads = torch.autograd.grad(value, list(params.values()))
    return {k: g**2 for k, g in zip(params, grads, strict=True)}


def loop_fisher(
    model: ContinualModel,
    x: torch.Tensor,
    y: torch.Tensor,
    kind: str,
    classes: tuple[int, ...] | None = None,
) -> Params:
    """The definition, one example (and one class) at a time."""
    total = {k: torch.zeros_like(v) for k, v in model.params.items()}

    def add(part: Params, weight: float = 1.0) -> None:
        for k in total:
            total[k] += weight * part[k]

    for xi, yi in zip(x, y, strict=True):
        if model.loss == "mse":
            if kind == "empirical":
                add(score_sq(model, xi, lambda out, yi=yi: -0.5 * (out[0] - yi) ** 2))
            else:  # unit-variance Gaussian: E[(y - f)^2] (df)^2 = (df)^2
                add(score_sq(model, xi, lambda out: out[0]))
            continue

        def logp(out: torch.Tensor, c: int) -> torch.Tensor:
            if classes is not None:
                keep = torch.tensor([i in classes for i in range(len(out))])
                out = out.masked_fill(~keep, float("-inf"))
            return torch.log_softmax(out, -1)[c]

        if kind == "empirical":
            add(score_sq(model, xi, lambda out, yi=yi: logp(out, int(yi))))
        else:
            with torch.no_grad():
                out = model.output(model.params, xi[None])[0]
                probs = torch.stack([logp(out, c) for c in range(len(out))]).exp()
            for c, p in enumerate(probs.tolist()):
                if p > 0:
                    add(score_sq(model, xi, lambda out, c=c: logp(out, c)), p)
    return {k: v / len(x) for k, v in total.items()}


@pytest.mark.parametrize("kind", ["empirical", "true"])
@pytest.mark.parametrize("out_dim", [3, 1], ids=["cross_entropy", "mse"])
def test_fisher_matches_the_per_example_loop(kind: FisherKind, out_dim: int) -> None:
    model = make_model(out_dim)
    x, y = make_data(out_dim)
    got = fisher_diagonal(model, model.params, x, y, kind=kind)
    expected = loop_fisher(model, x, y, kind)
    assert sorted(got) == sorted(model.params)
    for k in got:
        assert not got[k].requires_grad
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_classes_restrict_the_fisher(kind: FisherKind) -> None:
    model = make_model(4)
    x, y = make_data(4)
    y = y % 2 + 1  # labels in the task's classes (1, 2)
    got = fisher_diagonal(model, model.params, x, y, kind=kind, classes=(1, 2))
    expected = loop_fisher(model, x, y, kind, classes=(1, 2))
    for k in got:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-8)
    # the output units of the other classes get no information
    head = got["layers.2.weight"]
    assert float(head[[0, 3]].abs().max()) == 0.0 and float(head[[1, 2]].abs().max()) > 0


@pytest.mark.parametrize("kind", ["empirical", "true"])
@pytest.mark.parametrize("out_dim", [3, 1], ids=["cross_entropy", "mse"])
def test_chunk_size_does_not_change_the_fisher(kind: FisherKind, out_dim: int) -> None:
    model = make_model(out_dim)
    x, y = make_data(out_dim, n=23)
    whole = fisher_diagonal(model, model.params, x, y, kind=kind)
    for chunk in (1, 4, 7):
        parts = fisher_diagonal(model, model.params, x, y, kind=kind, chunk=chunk)
        for k in whole:
            torch.testing.assert_close(parts[k], whole[k], rtol=1e-5, atol=1e-8)


def test_names_select_the_parameters() -> None:
    model = make_model(3)
    x, y = make_data(3)
    names = ["layers.2.weight", "layers.2.bias"]
    got = fisher_diagonal(model, model.params, x, y, names=names)
    full = fisher_diagonal(model, model.params, x, y)
    assert sorted(got) == sorted(names)
    for k in names:
        torch.testing.assert_close(got[k], full[k])


def test_fisher_accepts_leaves_that_require_grad_and_rejects_bad_input() -> None:
    model = make_model(3)
    x, y = make_data(3)
    leaves = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    got = fisher_diagonal(model, leaves, x, y)
    assert all(not v.requires_grad for v in got.values())
    with pytest.raises(ValueError, match="kind"):
        fisher_diagonal(model, model.params, x, y, kind="exact")
    with pytest.raises(ValueError, match="example"):
        fisher_diagonal(model, model.params, x[:0], y[:0])


def test_quadratic_penalty_is_the_weighted_squared_distance() -> None:
    params = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.5]])}
    anchor = {"a": torch.tensor([0.0, 1.0]), "b": torch.tensor([[1.5]])}
    importance = {"a": torch.tensor([2.0, 3.0]), "b": torch.tensor([[4.0]])}
    assert float(quadratic_penalty(params, anchor, importance)) == pytest.approx(9.0)
    # only the names in ``importance`` count
    assert float(quadratic_penalty(params, anchor, {"b": importance["b"]})) == pytest.approx(4.0)
    assert float(quadratic_penalty(params, anchor, {})) == 0.0
    leaf = params["a"].clone().requires_grad_()
    value = quadratic_penalty({**params, "a": leaf}, anchor, importance)
    (grad,) = torch.autograd.grad(value, leaf)
    torch.testing.assert_close(grad, 2 * importance["a"] * (params["a"] - anchor["a"]))


def test_batch_normalised_networks_are_refused() -> None:
    net = PolicyNet(3, (5,), out_dim=3, norm="batch")
    model = ContinualModel(net, init_params(net, seed=0))
    x, y = make_data(3)
    with pytest.raises(ValueError, match="norm"):
        fisher_diagonal(model, model.params, x, y)
