"""Online EWC: the running Fisher against an explicit per-example loop, its decay, the anchor,
the penalty's value, the daemon's ``consolidate`` entry point, shape checks and the state round
trip. That it keeps an earlier task better than plain fine-tuning is checked in
``test_regularizers_vs_fine_tuning.py``."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual.online_ewc import OnlineEWC
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.network import PolicyNet, init_params


def tiny_model(seed: int = 0, out_dim: int = 3) -> ContinualModel:
    net = PolicyNet(4, (5,), out_dim=out_dim)
    return ContinualModel(net, init_params(net, seed=seed))


def loop_fisher(
    model: ContinualModel, x: torch.Tensor, y: torch.Tensor, classes: tuple[int, ...] | None = None
) -> dict[str, torch.Tensor]:
    """Empirical Fisher, one example at a time with autograd."""
    total = {k: torch.zeros_like(v) for k, v in model.params.items()}
    for xi, yi in zip(x, y, strict=True):
        params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
        logits = model.output(params, xi[None])[0]
        if classes is not None:
            mask = torch.full_like(logits, float("-inf"))
            mask[list(classes)] = 0.0
            logits = logits + mask
        logp = torch.log_softmax(logits, -1)[yi]
        grads = torch.autograd.grad(logp, list(params.values()))
        for k, g in zip(params, grads, strict=True):
            total[k] += g**2
    return {k: v / len(x) for k, v in total.items()}


def data(seed: int, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def moved(params: dict[str, torch.Tensor], by: float) -> dict[str, torch.Tensor]:
    return {
        k: v + by * torch.sign(torch.sin(torch.arange(v.numel()) + 1.0)).reshape(v.shape)
        for k, v in params.items()
    }


def test_fisher_and_anchor_match_a_per_example_loop() -> None:
    model = tiny_model()
    x, y = data(1)
    ewc = OnlineEWC(decay=0.7)
    ewc.after_task(model, ContinualTask(0, x, y, x, y))
    expected = loop_fisher(model, x, y)
    assert ewc.fisher is not None and ewc.anchor is not None
    for k in model.params:
        torch.testing.assert_close(ewc.fisher[k], expected[k], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ewc.anchor[k], model.params[k])


def test_task_classes_restrict_the_fisher() -> None:
    model = tiny_model()
    x, y = data(2)
    y = y.clamp(min=1)  # labels in the task's classes (1, 2)
    ewc = OnlineEWC()
    ewc.after_task(model, ContinualTask(0, x, y, x, y, classes=(1, 2)))
    expected = loop_fisher(model, x, y, classes=(1, 2))
    assert ewc.fisher is not None
    for k in model.params:
        torch.testing.assert_close(ewc.fisher[k], expected[k], rtol=1e-5, atol=1e-7)
    unrestricted = loop_fisher(model, x, y)
    assert not torch.allclose(ewc.fisher["layers.2.weight"], unrestricted["layers.2.weight"])


def test_running_fisher_decays_and_anchor_follows_the_latest_task() -> None:
    first, second = tiny_model(seed=0), tiny_model(seed=1)
    (x0, y0), (x1, y1) = data(3), data(4)
    ewc = OnlineEWC(decay=0.25)
    ewc.consolidate(first, x0, y0)
    ewc.consolidate(second, x1, y1)
    f0, f1 = loop_fisher(first, x0, y0), loop_fisher(second, x1, y1)
    assert ewc.tasks_seen == 2
    assert ewc.fisher is not None and ewc.anchor is not None
    for k in first.params:
        torch.testing.assert_close(ewc.fisher[k], 0.25 * f0[k] + f1[k], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ewc.anchor[k], second.params[k])


def test_decay_zero_keeps_only_the_latest_task() -> None:
    model = tiny_model()
    (x0, y0), (x1, y1) = data(5), data(6)
    ewc = OnlineEWC(decay=0.0)
    ewc.consolidate(model, x0, y0)
    ewc.consolidate(model, x1, y1)
    expected = loop_fisher(model, x1, y1)
    assert ewc.fisher is not None
    for k in model.params:
        torch.testing.assert_close(ewc.fisher[k], expected[k], rtol=1e-5, atol=1e-7)


def test_penalty_is_half_lambda_times_the_weighted_squared_distance() -> None:
    model = tiny_model()
    x, y = data(7)
    task = ContinualTask(0, x, y, x, y)
    ewc = OnlineEWC(lam=3.0)
    assert ewc.penalty(model, model.params, x, y, task) is None
    ewc.after_task(model, task)
    params = moved(model.params, 0.2)
    fisher = loop_fisher(model, x, y)
    expected = 1.5 * sum(
        float((fisher[k] * (params[k] - model.params[k]) ** 2).sum()) for k in params
    )
    value = ewc.penalty(model, params, x, y, task)
    assert value is not None
    assert float(value) == pytest.approx(expected, rel=1e-5)
    zero = ewc.penalty(model, model.params, x, y, task)
    assert zero is not None and float(zero) == 0.0


def test_max_examples_subsamples_with_a_seed() -> None:
    model = tiny_model()
    x, y = data(8, n=40)
    fishers = []
    for seed in (0, 0, 1):
        ewc = OnlineEWC(max_examples=10, seed=seed)
        ewc.consolidate(model, x, y)
        assert ewc.fisher is not None
        fishers.append(ewc.fisher["layers.0.weight"])
    full = loop_fisher(model, x, y)["layers.0.weight"]
    torch.testing.assert_close(fishers[0], fishers[1])
    assert not torch.allclose(fishers[0], fishers[2])
    assert not torch.allclose(fishers[0], full)


def test_shape_mismatch_names_the_parameter() -> None:
    model = tiny_model(out_dim=3)
    x, y = data(9)
    ewc = OnlineEWC()
    ewc.consolidate(model, x, y)
    other = tiny_model(out_dim=2)
    task = ContinualTask(1, x, y.clamp(max=1), x, y)
    with pytest.raises(ValueError, match=r"layers\.2\.weight"):
        ewc.penalty(other, other.params, x, y, task)
    with pytest.raises(ValueError, match=r"layers\.2\.weight"):
        ewc.consolidate(other, x, y.clamp(max=1))


def test_parameters_added_since_the_last_task_start_with_no_importance() -> None:
    model = tiny_model()
    (x0, y0), (x1, y1) = data(11), data(12)
    ewc = OnlineEWC(decay=0.5)
    ewc.consolidate(model, x0, y0)
    grown = ContinualModel(model.net, {**model.params, "extra": torch.ones(2)})
    ewc.consolidate(grown, x1, y1)
    assert ewc.fisher is not None and ewc.anchor is not None
    assert torch.equal(ewc.fisher["extra"], torch.zeros(2))  # the output does not use it
    torch.testing.assert_close(ewc.anchor["extra"], torch.ones(2))


@pytest.mark.parametrize(
    "kwargs",
    [{"lam": -1.0}, {"decay": 1.5}, {"fisher": "exact"}, {"max_examples": 0}, {"seed": 1.5}],
)
def test_bad_arguments_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        OnlineEWC(**kwargs)  # type: ignore[arg-type]


def test_state_round_trips_and_rejects_other_states() -> None:
    model = tiny_model()
    x, y = data(10)
    ewc = OnlineEWC(decay=0.5)
    fresh = OnlineEWC(decay=0.5)
    fresh.load_state_dict(ewc.state_dict())
    assert fresh.fisher is None and fresh.tasks_seen == 0
    ewc.consolidate(model, x, y)
    state = ewc.state_dict()
    fresh.load_state_dict(state)
    assert fresh.tasks_seen == 1
    assert fresh.fisher is not None and ewc.fisher is not None
    for k in model.params:
        torch.testing.assert_close(fresh.fisher[k], ewc.fisher[k])
    assert ewc.memory_bytes() == 2 * 4 * model.parameter_count()
    with pytest.raises(ValueError, match="ewc"):
        fresh.load_state_dict({"name": "ewc"})
    with pytest.raises(ValueError, match="anchor"):
        fresh.load_state_dict({**state, "anchor": None})
