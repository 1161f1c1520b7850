"""The policy learner's trust region (``adaptation.trust_region``): the published weights stay
within the bound of the parent for every algorithm, from any start and however the loop ends;
a bound too wide to matter changes nothing; a parent that does not beat its baseline lifts
it; with a returning regime's proximal step the bound composes as projected steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_policy_learner import ALGORITHMS, SPEC, adaptation_settings, episode, request

from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.trust import TrustRegionStep, project
from adaptd.daemon.config.settings import ContinualSettings
from adaptd.daemon.learner import messages
from adaptd.daemon.learner.policy_learner import PolicyLearner
from adaptd.daemon.learner.tensors import targets, tensor_params

TINY = 0.01
"""A trust region well inside what five steps move (they move the policy by about 0.1 of its
norm on these regimes)."""


def relative_distance(weights: dict[str, np.ndarray], parent: dict[str, np.ndarray]) -> float:
    """The bound's measure, written out with numpy in float64."""
    diff = math.sqrt(
        sum(float(((weights[k] - parent[k]).astype(np.float64) ** 2).sum()) for k in parent)
    )
    size = math.sqrt(sum(float((v.astype(np.float64) ** 2).sum()) for v in parent.values()))
    return diff / size


def shifted(weights: dict[str, np.ndarray], seed: int, scale: float) -> dict[str, np.ndarray]:
    """``weights`` plus noise on every parameter (another policy of the same network)."""
    rng = np.random.default_rng(seed)
    return {
        k: (v + scale * rng.normal(size=v.shape)).astype(np.float32) for k, v in weights.items()
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_tiny_trust_region_publishes_weights_within_the_bound(algorithm: str) -> None:
    settings = adaptation_settings(meta_algorithm=algorithm, trust_region=TINY, gate_z=0.0)
    learner = PolicyLearner(settings, SPEC)
    free = PolicyLearner(adaptation_settings(meta_algorithm=algorithm, gate_z=0.0), SPEC)
    job = request(0)
    outcome = learner.adapt(job, deadline_s=10.0)
    parent = learner.init_numpy()  # no live policy: the initialisation is the parent
    assert relative_distance(outcome.weights, parent) <= TINY * (1 + 1e-5)
    assert outcome.update_distance == pytest.approx(
        relative_distance(outcome.weights, parent), rel=1e-4
    )
    assert outcome.trust_region == TINY and outcome.trust_region_active
    assert not outcome.trust_region_lifted
    # Held back, yet a step the right way: it beats the parent and is published.
    assert outcome.publish and outcome.query_loss_after < outcome.query_loss_before
    unbounded = free.adapt(job, deadline_s=10.0)
    assert unbounded.update_distance > 5 * TINY
    assert outcome.query_loss_after > unbounded.query_loss_after


@pytest.mark.parametrize("algorithm", ["anil", "fomaml"])
def test_a_start_far_from_the_parent_is_brought_within_the_bound(algorithm: str) -> None:
    # A new regime starts from the initialisation while subscribers hold another policy,
    # everywhere 0.3 away (ANIL adapts only the output layer: the rest must be projected
    # before the loop, no step can bring it in).
    settings = adaptation_settings(meta_algorithm=algorithm, trust_region=TINY)
    learner = PolicyLearner(settings, SPEC)
    parent = shifted(learner.init_numpy(), seed=1, scale=0.3)
    for deadline_s in (10.0, 0.0):  # the deadline may stop the loop before its first step
        outcome = learner.adapt(request(2, parent), deadline_s=deadline_s)
        assert relative_distance(outcome.weights, parent) <= TINY * (1 + 1e-5)
        assert outcome.trust_region_active
    assert outcome.steps == 0 and outcome.deadline_hit


def test_a_trust_region_too_wide_to_matter_changes_nothing() -> None:
    job = request(3)
    free = PolicyLearner(adaptation_settings(), SPEC).adapt(job, deadline_s=10.0)
    wide = PolicyLearner(adaptation_settings(trust_region=1e3), SPEC).adapt(job, deadline_s=10.0)
    for k in free.weights:
        np.testing.assert_array_equal(wide.weights[k], free.weights[k])
    assert (wide.publish, wide.query_loss_after) == (free.publish, free.query_loss_after)
    assert not wide.trust_region_active and not wide.trust_region_lifted
    assert free.trust_region is None and not free.trust_region_active
    assert wide.update_distance == free.update_distance > 0


def _constant_parent(learner: PolicyLearner, value: float) -> dict[str, np.ndarray]:
    """A policy that outputs ``value`` whatever its input (as a retired policy's baseline)."""
    weights = {k: np.zeros_like(v) for k, v in learner.init_numpy().items()}
    last = max(int(k.split(".")[1]) for k in weights)
    weights[f"layers.{last}.bias"] = np.full_like(weights[f"layers.{last}.bias"], value)
    return weights


def test_the_bound_is_lifted_when_the_parent_does_not_beat_the_baseline() -> None:
    # The zero forecast is the baseline; the regime's returns are about 0.5.
    spec = SPEC._replace(baseline_output=0.0)
    bounded = PolicyLearner(adaptation_settings(trust_region=TINY), spec)
    free = PolicyLearner(adaptation_settings(), spec)
    cases = {
        "losing": _constant_parent(bounded, -2.0),  # far worse than the zero forecast
        "the baseline itself": _constant_parent(bounded, 0.0),  # a retired policy's stand-in
        "winning": _constant_parent(bounded, 0.5),
    }
    outcomes = {name: bounded.adapt(request(4, parent), 10.0) for name, parent in cases.items()}
    for name in ("losing", "the baseline itself"):
        lifted, reference = outcomes[name], free.adapt(request(4, cases[name]), 10.0)
        assert lifted.trust_region_lifted and not lifted.trust_region_active, name
        for k in reference.weights:
            np.testing.assert_array_equal(lifted.weights[k], reference.weights[k])
        assert lifted.publish, name  # the subscriber gets off the losing policy
    winning = outcomes["winning"]
    assert not winning.trust_region_lifted and winning.trust_region_active
    assert winning.query_loss_before < winning.query_loss_baseline
    assert relative_distance(winning.weights, cases["winning"]) <= TINY * (1 + 1e-5)


def test_with_a_returning_regimes_proximal_step_the_steps_are_projected() -> None:
    settings = adaptation_settings(trust_region=0.02)
    learner = PolicyLearner(settings, SPEC, ContinualSettings(policy_lambda=10.0))
    assert learner.consolidate([episode(k) for k in range(4)]) == 1  # a Fisher to protect with
    init = learner.init_numpy()
    last_policy, parent = shifted(init, seed=5, scale=0.05), shifted(init, seed=6, scale=0.05)
    job = request(7, parent)._replace(start_weights=last_policy)
    outcome = learner.adapt(job, deadline_s=10.0)
    # The reference, composed by hand: the proximal step stays anchored at the regime's
    # policy, the loop starts from its projection onto the ball around the parent.
    centre, anchor = tensor_params(parent), tensor_params(last_policy)
    radius = 0.02 * math.sqrt(sum(float(v.pow(2).sum()) for v in centre.values()))
    proximal = ProximalStep(anchor, learner.protection.ewc.fisher, 10.0)
    expected = learner.learner.adapt(
        torch.from_numpy(job.support_x),
        targets(job.support_y, "mse"),
        start=project(anchor, centre, radius),
        step=TrustRegionStep(centre, radius, proximal),
    )
    for k, v in expected.params.items():
        np.testing.assert_allclose(outcome.weights[k], v.numpy(), rtol=0, atol=1e-6)
    assert relative_distance(outcome.weights, parent) <= 0.02 * (1 + 1e-5)


def test_the_message_algorithm_names_the_bound_only_when_it_is_set() -> None:
    assert "trust_region" not in messages.algorithm(adaptation_settings(), 0)
    assert messages.algorithm(adaptation_settings(trust_region=0.1), 0)["trust_region"] == 0.1
