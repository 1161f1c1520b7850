"""The policy learner's forgetting prevention: consolidation, the held-out evaluation, the
checkpoint with Fisher and anchor (and the format before it), and the warm-start penalty."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pytest
import torch
from test_policy_learner import SPEC, adaptation_settings, episode, request

from adaptd.adapters.fast_weights import mse
from adaptd.adapters.meta.regularizer import FunctionRegularizer
from adaptd.daemon.config.settings import ContinualSettings
from adaptd.daemon.learner.messages import CHECKPOINT_MAGIC
from adaptd.daemon.learner.policy_learner import PolicyLearner
from adaptd.daemon.learner.tensors import episode_task

ALGORITHMS = ["maml", "fomaml", "reptile", "metasgd", "anil"]


def learner(algorithm: str = "anil", **continual: object) -> PolicyLearner:
    settings = adaptation_settings(meta_algorithm=algorithm)
    return PolicyLearner(settings, SPEC, ContinualSettings(**continual))


def trained(algorithm: str = "anil", **continual: object) -> PolicyLearner:
    """Meta-trained for two rounds of two updates, consolidated after each."""
    out = learner(algorithm, **continual)
    for round_ in range(2):
        for step in range(2):
            out.meta_train([episode(40 * round_ + 4 * step + k) for k in range(3)])
        out.consolidate([episode(900 + 10 * round_ + k) for k in range(4)])
    return out


def test_consolidate_counts_rounds_and_anchors_at_the_initialisation() -> None:
    a = learner()
    assert a.consolidate([]) == 0
    assert a.consolidate([episode(1), episode(2)]) == 1
    assert a.consolidate([episode(3)]) == 2
    anchor = a.protection.ewc.anchor
    for k, v in a.learner.params.items():
        assert torch.equal(anchor[k], v)
    assert learner(penalty="none").consolidate([episode(1)]) == 0


@pytest.mark.parametrize("algorithm", ["anil", "reptile", "metasgd"])
def test_evaluate_is_the_few_shot_query_loss_from_the_initialisation(algorithm: str) -> None:
    a = trained(algorithm)
    episodes = [episode(70, n=32), episode(71, n=1), episode(72, n=12)]
    losses = a.evaluate(episodes)
    assert math.isnan(losses[1])  # one example cannot be split into support and query
    for ep, loss in zip(episodes, losses, strict=True):
        task = episode_task(ep, a.settings.query_size)
        if task is None:
            continue
        fast = a.learner.adapt(task.support_x, task.support_y).params
        with torch.no_grad():
            expected = float(mse(a.net, fast, task.query_x, task.query_y))
        assert loss == pytest.approx(expected, rel=1e-4)
    assert a.evaluate([]) == []
    assert all(math.isnan(v) for v in a.evaluate([episode(1, n=1)]))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_checkpoint_holds_fisher_and_anchor_and_continues_exactly(algorithm: str) -> None:
    a = trained(algorithm)
    b = learner(algorithm)
    b.load_bytes(a.state_bytes())
    assert b.meta_updates() == a.meta_updates() == 4
    assert b.protection.consolidations == a.protection.consolidations == 2
    for k in a.protection.ewc.fisher:
        assert torch.equal(b.protection.ewc.fisher[k], a.protection.ewc.fisher[k])
        assert torch.equal(b.protection.ewc.anchor[k], a.protection.ewc.anchor[k])
    # Meta-training continues identically, penalty included...
    more = [episode(500 + k, slope=-0.8, drift=-0.5) for k in range(3)]
    ra, rb = a.meta_train(more), b.meta_train(more)
    for name in ra.init:
        np.testing.assert_array_equal(ra.init[name], rb.init[name])
    # ...and so does a penalised warm start.
    warm = request(5)
    warm = warm._replace(start_weights=a.adapt(request(4), 5.0).weights)
    oa, ob = a.adapt(warm, 5.0), b.adapt(warm, 5.0)
    for name in oa.weights:
        np.testing.assert_array_equal(oa.weights[name], ob.weights[name])


def test_a_checkpoint_from_before_the_penalty_still_loads() -> None:
    a = trained("fomaml")
    old = io.BytesIO()
    torch.save(a.learner.state_dict(), old)  # format 1: the meta-learner's state alone
    b = trained("fomaml")  # a consolidated penalty that the old checkpoint must replace
    b.load_bytes(old.getvalue())
    assert b.meta_updates() == 4
    for k, v in a.learner.params.items():
        assert torch.equal(b.learner.params[k], v)
    assert b.protection.consolidations == 0 and b.protection.ewc.fisher is None
    assert b.consolidate([episode(3)]) == 1  # and the penalty starts afresh


def test_penalty_settings_and_checkpoints_mix_either_way() -> None:
    with_penalty, without = trained("anil"), trained("anil", penalty="none")
    fresh = learner(penalty="none")
    fresh.load_bytes(with_penalty.state_bytes())  # the stored penalty is ignored
    assert fresh.protection.state_dict() is None
    other = learner()
    other.load_bytes(without.state_bytes())  # no stored penalty: start afresh
    assert other.protection.consolidations == 0


def test_a_pickled_checkpoint_of_format_2_still_loads_and_todays_is_no_pickle() -> None:
    a = trained("fomaml")
    state = {
        "format": 2,
        "learner": a.learner.state_dict(),
        "protection": a.protection.state_dict(),
    }
    old = io.BytesIO()
    torch.save(state, old)  # what the version before the typed checkpoint wrote
    b = learner("fomaml")
    b.load_bytes(old.getvalue())
    assert b.meta_updates() == 4 and b.protection.consolidations == 2
    for k, v in a.learner.params.items():
        assert torch.equal(b.learner.params[k], v)
    today = b.state_bytes()
    assert today.startswith(CHECKPOINT_MAGIC) and b"PK\x03\x04" not in today[:64]
    with pytest.raises(pickle.UnpicklingError):  # not a pickle
        torch.load(io.BytesIO(today), weights_only=True)


def test_an_unknown_checkpoint_format_is_refused() -> None:
    buf = io.BytesIO()
    torch.save({"format": 99, "learner": {}}, buf)
    with pytest.raises(ValueError, match="checkpoint format 99"):
        learner().load_bytes(buf.getvalue())


def test_a_non_finite_meta_update_is_undone() -> None:
    a = trained("fomaml")
    before = {k: v.clone() for k, v in a.learner.params.items()}
    a.learner.regularizer = FunctionRegularizer(
        lambda p: float("nan") * sum(v.sum() for v in p.values())
    )
    with pytest.raises(FloatingPointError, match="non-finite"):
        a.meta_train([episode(1), episode(2)])
    assert a.meta_updates() == 4
    for k, v in before.items():
        assert torch.equal(a.learner.params[k], v)


def test_a_returning_regime_keeps_more_of_its_policy_with_the_penalty() -> None:
    distances = {}
    for lam in (0.0, 1.0, 100.0):
        a = trained(policy_lambda=lam)
        first = a.adapt(request(6), 5.0).weights
        warm = request(7)
        warm = warm._replace(start_weights=first)
        back = a.adapt(warm, 5.0).weights
        distances[lam] = sum(float(((back[k] - first[k]) ** 2).sum()) for k in first)
    assert distances[0.0] > distances[1.0] > distances[100.0] > 0
