"""What Meta-SGD and ANIL do beyond MAML: learned step sizes, and a head-only inner loop."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, adapt
from adaptd.adapters.meta import ANIL, MAML, MetaSGD
from adaptd.adapters.meta.metasgd import STEP_SIZE_PREFIX
from adaptd.adapters.network import PolicyNet


@pytest.mark.parametrize("backend", BACKENDS)
def test_metasgd_adapts_with_its_learned_step_sizes(backend: str, make_task) -> None:
    learner = MetaSGD(PolicyNet(4, (8,)), inner_steps=2, inner_lr=0.05, backend=backend)
    g = torch.Generator().manual_seed(0)
    learner.meta_update([make_task(g) for _ in range(3)])
    assert not all(torch.all(a == 0.05) for a in learner.alpha.values())
    task = make_task(g)
    expected = adapt(
        learner.net, learner.params, task.support_x, task.support_y, steps=2, lr=learner.alpha
    )
    result = learner.adapt(task.support_x, task.support_y)
    for name, value in expected.params.items():
        torch.testing.assert_close(result.params[name], value)
    scalar = adapt(learner.net, learner.params, task.support_x, task.support_y, steps=2, lr=0.05)
    assert not torch.allclose(scalar.params["layers.0.weight"], result.params["layers.0.weight"])


def test_metasgd_with_untouched_step_sizes_equals_maml(make_task) -> None:
    g = torch.Generator().manual_seed(1)
    tasks = [make_task(g) for _ in range(3)]
    net = PolicyNet(4, (8,))
    sgd, maml = MetaSGD(net, inner_steps=2, inner_lr=0.1), MAML(net, inner_steps=2, inner_lr=0.1)
    sgd_grads, _ = sgd.meta_gradient(tasks)
    maml_grads, _ = maml.meta_gradient(tasks)
    for name, value in maml_grads.items():
        torch.testing.assert_close(sgd_grads[name], value)
    assert set(sgd_grads) - set(maml_grads) == {STEP_SIZE_PREFIX + k for k in maml_grads}


@pytest.mark.parametrize("backend", BACKENDS)
def test_anil_adapts_only_the_head(backend: str, make_task) -> None:
    learner = ANIL(PolicyNet(4, (8, 8)), inner_steps=3, inner_lr=0.1, backend=backend)
    assert learner.inner_names == ("layers.4.weight", "layers.4.bias")
    task = make_task(torch.Generator().manual_seed(2))
    result = learner.adapt(task.support_x, task.support_y)
    for name, value in learner.params.items():
        changed = not torch.equal(result.params[name], value)
        assert changed == (name in learner.inner_names), name
    assert result.losses[-1] < result.losses[0]


def test_anil_with_a_head_only_net_is_maml(make_task) -> None:
    g = torch.Generator().manual_seed(3)
    tasks = [make_task(g) for _ in range(3)]
    net = PolicyNet(4, ())  # the only layer is the head
    anil, maml = ANIL(net, inner_steps=2, inner_lr=0.1), MAML(net, inner_steps=2, inner_lr=0.1)
    for name, value in maml.meta_gradient(tasks)[0].items():
        torch.testing.assert_close(anil.meta_gradient(tasks)[0][name], value)


def test_metasgd_state_needs_its_step_sizes(make_task) -> None:
    learner = MetaSGD(PolicyNet(4, (8,)))
    state = learner.state_dict()
    del state["alpha"]
    with pytest.raises(ValueError, match="alpha"):
        MetaSGD(PolicyNet(4, (8,))).load_state_dict(state)
