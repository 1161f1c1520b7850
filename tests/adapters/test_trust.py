"""The trust region: the projection onto the ball against hand computations and its defining
properties (inside unchanged, outside onto the boundary along the same direction, held
entries held), and the step that projects another step's result through the inner loop."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
import torch
from torch import Tensor

from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.fast_weights import adapt
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.steps import SGD_STEP
from adaptd.adapters.trust import TrustRegionStep, distance, norm, project


def _random(seed: int, scale: float = 1.0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w": scale * torch.randn(3, 2, generator=g), "b": scale * torch.randn(2, generator=g)}


def _flat(params: dict[str, Tensor], centre: dict[str, Tensor]) -> Tensor:
    return torch.cat([(params[k] - centre[k]).flatten() for k in sorted(centre)])


def test_a_hand_computed_projection() -> None:
    # The difference (3, 4, 0) is 5 long; radius 1 keeps (0.6, 0.8, 0) of it.
    centre = {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([-2.0])}
    point = {"w": torch.tensor([4.0, 5.0]), "b": torch.tensor([-2.0])}
    assert float(distance(point, centre)) == 5.0
    out = project(point, centre, radius=1.0)
    torch.testing.assert_close(out["w"], torch.tensor([1.6, 1.8]))
    torch.testing.assert_close(out["b"], torch.tensor([-2.0]))
    assert float(norm({"w": torch.tensor([3.0, 4.0]), "b": torch.tensor([12.0])})) == 13.0


@pytest.mark.parametrize("seed", range(5))
def test_a_point_inside_the_ball_is_returned_unchanged(seed: int) -> None:
    centre, point = _random(seed), _random(seed + 100)
    radius = float(distance(point, centre)) * 1.01
    out = project(point, centre, radius)
    assert all(torch.equal(out[k], point[k]) for k in point)
    on_the_sphere = project(point, centre, float(distance(point, centre)))
    assert all(torch.equal(on_the_sphere[k], point[k]) for k in point)


@pytest.mark.parametrize("seed", range(5))
def test_a_point_outside_lands_on_the_boundary_along_the_same_direction(seed: int) -> None:
    centre, point = _random(seed), _random(seed + 100, scale=10.0)
    radius = 0.3
    assert float(distance(point, centre)) > radius
    out = project(point, centre, radius)
    assert float(distance(out, centre)) == pytest.approx(radius, rel=1e-6)
    before, after = _flat(point, centre), _flat(out, centre)
    torch.testing.assert_close(after, before * (radius / before.norm()))


def test_held_entries_are_held_and_spend_the_radius_first() -> None:
    centre = {"w": torch.zeros(1), "b": torch.zeros(1)}
    point = {"w": torch.tensor([3.0]), "b": torch.tensor([4.0])}
    # w holds 3 of sqrt(13): b keeps sqrt(13 - 9) = 2 of its 4.
    out = project(point, centre, math.sqrt(13.0), names=["b"])
    assert torch.equal(out["w"], point["w"])
    torch.testing.assert_close(out["b"], torch.tensor([2.0]))
    assert float(distance(out, centre)) == pytest.approx(math.sqrt(13.0))
    # The held entry alone is beyond the radius: the moving one goes to the centre.
    out = project(point, centre, 2.0, names=["b"])
    assert torch.equal(out["w"], point["w"]) and abs(float(out["b"])) < 1e-12
    # Inside with room to spare, nothing moves.
    assert torch.equal(project(point, centre, 6.0, names=["b"])["b"], point["b"])


def test_entries_outside_the_centre_pass_through_and_unknown_names_are_refused() -> None:
    point = {"w": torch.tensor([3.0, 4.0]), "extra": torch.tensor([100.0])}
    out = project(point, {"w": torch.zeros(2)}, 1.0)
    assert out["extra"] is point["extra"]
    with pytest.raises(ValueError, match=r"names holds parameters the centre lacks: \['v'\]"):
        project(point, {"w": torch.zeros(2)}, 1.0, names=["v"])


def test_the_projection_is_differentiable_even_at_the_centre() -> None:
    centre = _random(0)
    for point in ({k: v.clone().requires_grad_() for k, v in centre.items()}, _random(1, 10.0)):
        point = {k: v.requires_grad_() for k, v in point.items()}
        out = project(point, centre, 0.5)
        grads = torch.autograd.grad(sum(v.sum() for v in out.values()), list(point.values()))
        assert all(bool(torch.isfinite(g).all()) for g in grads)


def test_the_step_projects_the_result_of_the_step_it_wraps() -> None:
    g = torch.Generator().manual_seed(3)
    params = {"w": torch.randn(4, generator=g), "b": torch.randn(1, generator=g)}
    grads = {"w": 10 * torch.randn(4, generator=g)}
    centre = {k: v + 0.01 for k, v in params.items()}
    proximal = ProximalStep(params, {"w": torch.rand(4, generator=g)}, lam=3.0)
    step = TrustRegionStep(centre, 0.2, proximal)
    out = step(params, grads, {"w": 0.1}, ["w"])
    expected = project(proximal(params, grads, {"w": 0.1}, ["w"]), centre, 0.2, ["w"])
    assert all(torch.equal(out[k], expected[k]) for k in expected)
    assert torch.equal(out["b"], params["b"]) and step.clipped == 1
    # A step that stays inside is not counted.
    step({**out}, {"w": torch.zeros(4)}, {"w": 0.1}, ["w"])
    assert step.clipped == 1


@pytest.mark.parametrize("names", [None, ["layers.2.weight", "layers.2.bias"]])
def test_through_the_inner_loop_every_step_stays_within_the_ball(names: list[str] | None) -> None:
    net = PolicyNet(3, (8,))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=g)
    y = 2.0 * x[:, 0] + 1.0
    centre = init_params(net, seed=0)
    radius = 0.05 * float(norm(centre))
    seen: list[float] = []

    def watched(
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        keys: Sequence[str],
    ) -> dict[str, Tensor]:
        out = step(params, grads, rates, keys)
        seen.append(float(distance(out, centre)))
        return out

    step = TrustRegionStep(centre, radius)
    result = adapt(net, centre, x, y, steps=8, lr=0.5, names=names, step=watched)
    assert len(seen) == 8 and max(seen) <= radius * (1 + 1e-6)
    assert step.clipped > 0 and result.losses[-1] < result.losses[0]
    free = adapt(net, centre, x, y, steps=8, lr=0.5, names=names, step=SGD_STEP)
    assert float(distance(free.params, centre)) > radius  # the bound did hold it back
    # A ball too large to matter leaves the loop as it was, bit for bit.
    wide = adapt(net, centre, x, y, steps=8, lr=0.5, names=names, step=TrustRegionStep(centre, 1e6))
    assert all(torch.equal(wide.params[k], free.params[k]) for k in free.params)


def test_a_second_order_loop_differentiates_through_the_projection() -> None:
    net = PolicyNet(3, (8,))
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.ones(8)
    theta = {k: v.requires_grad_() for k, v in init_params(net, seed=1).items()}
    step = TrustRegionStep(theta, 0.01)
    result = adapt(net, theta, x, y, steps=3, lr=0.5, create_graph=True, step=step)
    loss = sum(v.sum() for v in result.params.values())
    grads = torch.autograd.grad(loss, list(theta.values()))
    assert all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("radius", [-0.1, math.inf, math.nan])
def test_the_radius_is_checked(radius: float) -> None:
    with pytest.raises(ValueError, match=r"^radius must be a number in \[0, inf\)"):
        TrustRegionStep({"w": torch.zeros(1)}, radius)
