"""Memory aware synapses: the output-sensitivity importance against an explicit per-example
loop (classifier, task classes, regressor, chunking), accumulation over tasks, that labels are
not used, the penalty's value and the state round trip. That it keeps an earlier task better
than plain fine-tuning is checked in ``test_regularizers_vs_fine_tuning.py``."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.continual.mas import MemoryAwareSynapses, output_sensitivity
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.network import PolicyNet, init_params


def tiny_model(seed: int = 0, out_dim: int = 3) -> ContinualModel:
    net = PolicyNet(4, (5,), out_dim=out_dim)
    loss = "cross_entropy" if out_dim > 1 else "mse"
    return ContinualModel(net, init_params(net, seed=seed), loss=loss)


def inputs(seed: int, n: int = 10) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))


def loop_sensitivity(
    model: ContinualModel, x: torch.Tensor, columns: list[int] | None = None
) -> dict[str, torch.Tensor]:
    """``mean |d ||f(x)||^2 / d theta|`` one example at a time with autograd."""
    total = {k: torch.zeros_like(v) for k, v in model.params.items()}
    for xi in x:
        params = {k: v.detach().requires_grad_() for k, v in model.params.items()}
        out = model.output(params, xi[None]).reshape(-1)
        if columns is not None:
            out = out[columns]
        grads = torch.autograd.grad(out.pow(2).sum(), list(params.values()))
        for k, g in zip(params, grads, strict=True):
            total[k] += g.abs()
    return {k: v / len(x) for k, v in total.items()}


@pytest.mark.parametrize(
    ("out_dim", "classes"), [(3, None), (3, (0, 2)), (1, None)], ids=["logits", "classes", "mse"]
)
def test_importance_matches_a_per_example_loop(out_dim: int, classes: tuple | None) -> None:
    model = tiny_model(out_dim=out_dim)
    x = inputs(1)
    got = output_sensitivity(model, model.params, x, classes=classes, chunk=3)
    expected = loop_sensitivity(model, x, None if classes is None else list(classes))
    for k in model.params:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-7)
    # per-example absolute values: larger than the absolute value of the mean gradient
    batch = {k: v.detach().requires_grad_() for k, v in model.params.items()}
    out = model.output(batch, x).reshape(len(x), -1)
    if classes is not None:
        out = out[:, list(classes)]
    mean_grad = torch.autograd.grad(out.pow(2).sum() / len(x), batch["layers.0.weight"])[0]
    assert float(got["layers.0.weight"].sum()) > float(mean_grad.abs().sum())


def test_importance_accumulates_over_tasks_and_ignores_labels() -> None:
    model = tiny_model()
    x0, x1 = inputs(2), inputs(3)
    mas = MemoryAwareSynapses()
    mas.after_task(model, ContinualTask(0, x0, torch.zeros(10, dtype=torch.long), x0, x0))
    labelled = MemoryAwareSynapses()
    labelled.after_task(model, ContinualTask(0, x0, torch.arange(10) % 3, x0, x0))
    first, other = mas.importance, labelled.importance
    assert first is not None and other is not None
    for k in first:
        torch.testing.assert_close(first[k], other[k])
    later = tiny_model(seed=1)
    mas.after_task(later, ContinualTask(1, x1, torch.zeros(10, dtype=torch.long), x1, x1))
    total, second = mas.importance, loop_sensitivity(later, x1)
    assert total is not None and mas.anchor is not None and mas.tasks_seen == 2
    for k in total:
        torch.testing.assert_close(total[k], first[k] + second[k], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(mas.anchor[k], later.params[k])


def test_penalty_value_and_state_round_trip() -> None:
    model, x = tiny_model(), inputs(4)
    task = ContinualTask(0, x, torch.zeros(10, dtype=torch.long), x, x)
    mas = MemoryAwareSynapses(lam=3.0)
    assert mas.penalty(model, model.params, x, task.train_y, task) is None
    mas.after_task(model, task)
    omega = loop_sensitivity(model, x)
    params = {k: v - 0.2 for k, v in model.params.items()}
    expected = 3.0 * sum(float((omega[k] * 0.04).sum()) for k in omega)
    value = mas.penalty(model, params, x, task.train_y, task)
    assert value is not None and float(value) == pytest.approx(expected, rel=1e-5)
    fresh = MemoryAwareSynapses(lam=3.0)
    fresh.load_state_dict(mas.state_dict())
    again = fresh.penalty(model, params, x, task.train_y, task)
    assert again is not None and float(again) == float(value)
    assert mas.memory_bytes() == 2 * 4 * model.parameter_count()
    with pytest.raises(ValueError, match="si"):
        fresh.load_state_dict({"name": "si"})
    other = tiny_model(out_dim=2)
    with pytest.raises(ValueError, match=r"layers\.2\.weight"):
        mas.penalty(other, other.params, x, task.train_y, task)


def test_max_examples_subsamples() -> None:
    model, x = tiny_model(), inputs(5, n=30)
    task = ContinualTask(0, x, torch.zeros(30, dtype=torch.long), x, x)
    few, same, full = (MemoryAwareSynapses(max_examples=m) for m in (5, 5, 30))
    for mas in (few, same, full):
        mas.after_task(model, task)
    a, b, c = (m.importance["layers.0.weight"] for m in (few, same, full))  # type: ignore[index]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_batch_normalised_networks_are_refused() -> None:
    net = PolicyNet(4, (5,), out_dim=3, norm="batch")
    model = ContinualModel(net, init_params(net, seed=0))
    with pytest.raises(ValueError, match="norm"):
        output_sensitivity(model, model.params, inputs(6))


@pytest.mark.parametrize("kwargs", [{"lam": -0.5}, {"max_examples": 0}, {"seed": None}])
def test_bad_arguments_are_named(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        MemoryAwareSynapses(**kwargs)  # type: ignore[arg-type]
