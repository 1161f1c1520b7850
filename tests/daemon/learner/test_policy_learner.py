from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from adaptd.daemon.config.settings import AdaptationSettings, load_settings
from adaptd.daemon.core.features import feature_names
from adaptd.daemon.learner import messages
from adaptd.daemon.learner.messages import AdaptJob, TaskSpec
from adaptd.daemon.learner.policy_learner import PolicyLearner
from adaptd.replay.episode import Episode

SHOTS, QUERY = 64, 16


def adaptation_settings(**overrides: object) -> AdaptationSettings:
    values = {
        "shots": SHOTS,
        "query_size": QUERY,
        "hidden": [16, 16],
        "inner_steps": 5,
        "inner_lr": 0.1,
        "seed": 0,
        **overrides,
    }
    return load_settings(environ={}, adaptation=values).adaptation


IN_DIM = len(feature_names(load_settings(environ={}).features))
SPEC = TaskSpec("return", IN_DIM, 1, "mse", 0.1, "scaled forward return")
ALGORITHMS = ["maml", "fomaml", "reptile", "metasgd", "anil"]


def regime(seed: int, n: int = SHOTS, slope: float = 0.8, drift: float = 0.5) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, IN_DIM)).astype(np.float32)
    y = (slope * x[:, 0] + drift + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, y


def job_of(
    request_id: str,
    task: str,
    x: np.ndarray,
    y: np.ndarray,
    parent: dict[str, np.ndarray] | None = None,
) -> AdaptJob:
    """A job whose last ``QUERY`` examples are the query set."""
    return AdaptJob(
        request_id=request_id,
        task=task,
        support_x=x[:-QUERY],
        support_y=y[:-QUERY],
        query_x=x[-QUERY:],
        query_y=y[-QUERY:],
        parent_weights=parent,
        start_weights=None,
        ready_wall_time=0.0,
    )


def request(seed: int, parent: dict[str, np.ndarray] | None = None) -> AdaptJob:
    return job_of(f"r{seed}", "return", *regime(seed), parent)


def episode(seed: int, n: int = 32, slope: float = 0.8, drift: float = 0.5) -> Episode:
    x, y = regime(seed, n, slope, drift)
    return Episode.from_arrays(
        stream="X",
        segment=seed,
        topic="in",
        partition=0,
        offsets=list(range(n)),
        ts_ms=list(range(n)),
        x=x,
        y=y,
    )


def net_of(learner: PolicyLearner) -> dict:
    return messages.architecture(learner.settings, learner.spec)


def algorithm_of(learner: PolicyLearner) -> dict:
    return messages.algorithm(learner.settings, learner.meta_updates())


def forward(learner: PolicyLearner, params: dict, x: np.ndarray) -> torch.Tensor:
    return functional_call(learner.net, params, (torch.as_tensor(x),))


def query_loss(
    learner: PolicyLearner, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> float:
    params = {k: torch.from_numpy(v) for k, v in weights.items()}
    with torch.no_grad():
        return float(((forward(learner, params, x) - torch.as_tensor(y)) ** 2).mean())


# -- adaptation --------------------------------------------------------------------------


def test_adapt_lowers_the_query_loss_from_the_meta_init() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    for seed in range(3):
        req = request(seed)
        outcome = learner.adapt(req, deadline_s=5.0)
        before = query_loss(learner, learner.init_numpy(), req.query_x, req.query_y)
        assert outcome.query_loss_before == pytest.approx(before, rel=1e-5)
        assert outcome.query_loss_after < 0.8 * outcome.query_loss_before
        assert outcome.support_loss_after < outcome.support_loss_before
        assert outcome.publish
        assert outcome.steps == 5
        assert not outcome.deadline_hit
        assert outcome.request_id == req.request_id
        assert outcome.meta_updates == 0


def test_adapt_returns_float32_numpy_weights_of_the_network() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    outcome = learner.adapt(request(0), deadline_s=5.0)
    shapes = {name: tuple(p.shape) for name, p in learner.net.named_parameters()}
    assert set(outcome.weights) == set(shapes)
    for name, value in outcome.weights.items():
        assert isinstance(value, np.ndarray)
        assert value.dtype == np.float32
        assert value.shape == shapes[name]
    # They are the adapted weights: the reported query loss is theirs.
    req = request(0)
    loss = query_loss(learner, outcome.weights, req.query_x, req.query_y)
    assert loss == pytest.approx(outcome.query_loss_after, rel=1e-5)


def test_the_gate_compares_against_the_parent_policy_when_there_is_one() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    good = learner.adapt(request(0), deadline_s=5.0)
    # A parent that already fits this regime well: adapting from the init cannot beat it.
    parent = good.weights
    for _ in range(30):  # fit the parent hard on plenty of data of the same regime
        params = {k: torch.from_numpy(v).requires_grad_() for k, v in parent.items()}
        x, y = regime(11, n=400)
        loss = ((forward(learner, params, x) - torch.from_numpy(y)) ** 2).mean()
        grads = torch.autograd.grad(loss, list(params.values()))
        parent = {
            k: (v - 0.2 * g).detach().numpy()
            for (k, v), g in zip(params.items(), grads, strict=True)
        }
    outcome = learner.adapt(request(0, parent=parent), deadline_s=5.0)
    req = request(0)
    loss = query_loss(learner, parent, req.query_x, req.query_y)
    assert outcome.query_loss_before == pytest.approx(loss, rel=1e-5)
    assert outcome.query_loss_before < outcome.query_loss_after
    assert not outcome.publish


def test_a_tiny_deadline_is_reported() -> None:
    learner = PolicyLearner(adaptation_settings(inner_steps=50), SPEC)
    outcome = learner.adapt(request(0), deadline_s=1e-9)
    assert outcome.deadline_hit
    assert outcome.steps < 50


def test_adapt_mutates_neither_the_net_nor_the_initialisation() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    net_before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    init_before = learner.init_numpy()
    req = request(0)
    arrays_before = [a.copy() for a in (req.support_x, req.support_y, req.query_x, req.query_y)]
    learner.adapt(req, deadline_s=5.0)
    learner.adapt(request(1, parent=learner.init_numpy()), deadline_s=5.0)
    for name, value in learner.net.state_dict().items():
        assert torch.equal(value, net_before[name])
    for name, value in learner.init_numpy().items():
        np.testing.assert_array_equal(value, init_before[name])
    for before, after in zip(
        arrays_before, (req.support_x, req.support_y, req.query_x, req.query_y), strict=True
    ):
        np.testing.assert_array_equal(before, after)


def test_a_fresh_policy_predicts_close_to_zero() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    init = {k: torch.from_numpy(v) for k, v in learner.init_numpy().items()}
    x, _ = regime(0, n=256)
    with torch.no_grad():
        prediction = forward(learner, init, x)
    assert float(prediction.abs().max()) < 0.2
    assert net_of(learner)["in_dim"] == IN_DIM


# -- meta-training -----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_meta_train_updates_the_initialisation(algorithm: str) -> None:
    learner = PolicyLearner(adaptation_settings(meta_algorithm=algorithm), SPEC)
    before = learner.init_numpy()
    episodes = [episode(k, slope=0.8, drift=0.3 + 0.1 * k) for k in range(4)]
    round_ = learner.meta_train(episodes)
    assert round_ is not None
    assert round_.tasks == 4
    assert round_.meta_updates == learner.meta_updates() == 1
    after = learner.init_numpy()
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    for name, value in round_.init.items():
        np.testing.assert_array_equal(value, after[name])
    assert algorithm_of(learner)["meta_updates"] == 1
    learner.meta_train(episodes)
    assert learner.meta_updates() == 2


def test_every_algorithm_setting_builds_its_learner() -> None:
    for algorithm in ALGORITHMS:
        learner = PolicyLearner(adaptation_settings(meta_algorithm=algorithm), SPEC)
        assert learner.learner.algorithm == algorithm
        assert algorithm_of(learner)["meta_algorithm"] == algorithm


def test_a_known_regime_adapts_from_its_last_policy() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    fresh = learner.adapt(request(3), deadline_s=5.0)
    warm = request(3)
    warm = warm._replace(start_weights=fresh.weights)  # what was learned for this regime
    again = learner.adapt(warm, deadline_s=5.0)
    # The support loss starts where the earlier policy left it, not at the initialisation.
    assert again.support_loss_before == pytest.approx(fresh.support_loss_after, rel=1e-5)
    assert again.support_loss_after < fresh.support_loss_after


def test_meta_train_without_usable_episodes_does_nothing() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    before = learner.init_numpy()
    assert learner.meta_train([]) is None
    assert learner.meta_train([episode(0, n=1)]) is None
    assert learner.meta_updates() == 0
    for name, value in learner.init_numpy().items():
        np.testing.assert_array_equal(value, before[name])


def test_episodes_of_another_feature_width_are_left_out_of_meta_training() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    good = episode(1)
    x, y = good.arrays()
    wider = Episode.from_arrays(
        stream="X",
        segment=9,
        topic="in",
        partition=0,
        offsets=list(range(len(y))),
        ts_ms=list(range(len(y))),
        x=np.hstack([x, np.zeros((len(y), 2), np.float32)]),  # replayed from before a change
        y=y,
    )
    assert learner.meta_train([wider]) is None
    round_ = learner.meta_train([wider, good])
    assert round_ is not None and round_.tasks == 1


def test_meta_training_on_a_family_of_regimes_helps_adaptation() -> None:
    learner = PolicyLearner(adaptation_settings(), SPEC)
    fresh = learner.adapt(request(100), deadline_s=5.0)
    for step in range(20):
        learner.meta_train([episode(1000 + 4 * step + k, n=48) for k in range(4)])
    trained = learner.adapt(request(100), deadline_s=5.0)
    assert trained.query_loss_before < fresh.query_loss_before
    assert trained.query_loss_after < fresh.query_loss_after


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_state_bytes_round_trip_gives_identical_adaptations(algorithm: str) -> None:
    a = PolicyLearner(adaptation_settings(meta_algorithm=algorithm), SPEC)
    for step in range(3):
        a.meta_train([episode(10 * step + k) for k in range(3)])
    b = PolicyLearner(adaptation_settings(meta_algorithm=algorithm, seed=0), SPEC)
    assert any(not np.array_equal(v, b.init_numpy()[k]) for k, v in a.init_numpy().items())
    b.load_bytes(a.state_bytes())
    assert b.meta_updates() == a.meta_updates() == 3
    for seed in (0, 1):
        oa, ob = a.adapt(request(seed), 5.0), b.adapt(request(seed), 5.0)
        for name in oa.weights:
            np.testing.assert_array_equal(oa.weights[name], ob.weights[name])
        assert (oa.query_loss_after, oa.publish) == (ob.query_loss_after, ob.publish)
    # ...and identical meta-training afterwards (FOMAML's optimiser state came along).
    more = [episode(77 + k) for k in range(3)]
    ra, rb = a.meta_train(more), b.meta_train(more)
    for name in ra.init:
        np.testing.assert_array_equal(ra.init[name], rb.init[name])


def test_state_of_one_algorithm_does_not_load_into_the_other() -> None:
    reptile = PolicyLearner(adaptation_settings(meta_algorithm="reptile"), SPEC)
    fomaml = PolicyLearner(adaptation_settings(meta_algorithm="fomaml"), SPEC)
    with pytest.raises(ValueError, match="reptile"):
        fomaml.load_bytes(reptile.state_bytes())


def test_a_policy_that_beats_its_parent_but_not_the_baseline_is_not_published() -> None:
    # The parent is far off (a constant 3), the baseline is the zero forecast: the support
    # set says 2, the query set says 0 (the regime moved on). The adapted policy improves on
    # the parent, yet loses to the baseline.
    spec = SPEC._replace(baseline_output=0.0)
    learner = PolicyLearner(AdaptationSettings(gate_z=0.0), spec)
    rng = np.random.default_rng(4)
    params = learner.init_numpy()
    far = {k: np.zeros_like(v) for k, v in params.items()}
    last = max(int(k.split(".")[1]) for k in far)
    far[f"layers.{last}.bias"] = np.full_like(far[f"layers.{last}.bias"], 3.0)
    job = AdaptJob(
        request_id="r",
        task="return",
        support_x=rng.normal(size=(12, IN_DIM)).astype(np.float32),
        support_y=(2.0 + 0.1 * rng.normal(size=12)).astype(np.float32),
        query_x=rng.normal(size=(8, IN_DIM)).astype(np.float32),
        query_y=(0.1 * rng.normal(size=8)).astype(np.float32),
        parent_weights=far,
        start_weights=None,
        ready_wall_time=0.0,
    )
    outcome = learner.adapt(job, 10.0)
    assert outcome.query_loss_after < outcome.query_loss_before  # beats the parent
    assert outcome.query_loss_baseline == pytest.approx(float(np.mean(job.query_y**2)), rel=1e-5)
    assert outcome.query_loss_after > outcome.query_loss_baseline
    assert not outcome.publish
    # Without a constant baseline, beating the parent is what counts.
    plain = PolicyLearner(AdaptationSettings(gate_z=0.0), SPEC).adapt(job, 10.0)
    assert plain.publish and math.isnan(plain.query_loss_baseline)


def test_a_skip_network_is_gated_against_its_offset_inputs_and_starts_near_them() -> None:
    # A classifier whose last three inputs are an ensemble's log-weights: its baseline is
    # those log-weights as logits (a constant 0 plus the offset), not the equal weights.
    k, in_dim = 3, 6
    spec = TaskSpec("strategy", in_dim, k, "cross_entropy", 0.01, "logits", 0.0, skip=k)
    learner = PolicyLearner(AdaptationSettings(gate_z=0.0), spec)
    assert messages.architecture(AdaptationSettings(), spec)["skip"] == k
    assert "skip" not in messages.architecture(AdaptationSettings(), SPEC)
    rng = np.random.default_rng(2)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, in_dim)).astype(np.float32)
        logits = 2.0 * rng.normal(size=(n, k))
        x[:, -k:] = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return x, logits.argmax(axis=1).astype(np.float32)  # the offset is right

    sx, sy = rows(12)
    qx, qy = rows(8)
    job = AdaptJob("r", "strategy", sx, sy, qx, qy, learner.init_numpy(), None, 0.0)
    outcome = learner.adapt(job, 10.0)
    expected = -np.take_along_axis(qx[:, -k:], qy.astype(int)[:, None], axis=1).mean()
    assert outcome.query_loss_baseline == pytest.approx(float(expected), rel=1e-5)
    # The initialisation's small outputs leave it near its offset, not near the equal weights.
    assert outcome.query_loss_before == pytest.approx(outcome.query_loss_baseline, abs=0.05)
    assert outcome.query_loss_before < math.log(k) - 0.3


def test_an_overshooting_step_size_serves_the_best_iterate_not_the_last() -> None:
    # Variance ratios with a step size far too large for QLIKE: the inner loop's last
    # iterate is orders of magnitude worse than its start, so the learner serves the best
    # one it passed through, and reports that iterate's support loss.
    spec = TaskSpec("risk", IN_DIM, 1, "qlike", 0.1, "variance ratio", baseline_output=0.0)
    settings = adaptation_settings(inner_lr=5.0, inner_steps=12)
    learner = PolicyLearner(settings, spec)
    rng = np.random.default_rng(5)
    x = (3.0 * rng.normal(size=(SHOTS, IN_DIM))).astype(np.float32)
    y = (rng.normal(size=SHOTS) ** 2 + 1e-3).astype(np.float32)
    job = job_of("r", "risk", x, y)
    sx, sy = torch.from_numpy(job.support_x), torch.from_numpy(job.support_y)
    last = learner.learner.adapt(sx, sy)
    assert last.losses[-1] > 10 * last.losses[0]  # plain descent diverges here
    outcome = learner.adapt(job, 10.0)
    assert outcome.steps == 12
    assert outcome.support_loss_after <= outcome.support_loss_before
    assert outcome.support_loss_after == pytest.approx(min(last.losses), rel=1e-4)
    assert math.isfinite(outcome.query_loss_after)
