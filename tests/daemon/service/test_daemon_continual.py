"""Forgetting prevention in the running daemon (real Tansu broker and Redis): it learns regime
A, then the conflicting regime B, then sees A again; its retention gauges, computed from real
evaluations of held-out episodes, and the query loss of its policy for returning A show that A
was retained. Held-out episodes never reach the training reservoir."""

from __future__ import annotations

import asyncio
import math

import pytest
from daemon_support import produce, read_topic, volume_regimes_stream, wait_until

from adaptd.daemon.core.policy import PolicyMessage, decode_message
from adaptd.daemon.io.checkpoints import CheckpointStore
from adaptd.daemon.learner import checkpoint as checkpoint_format
from adaptd.daemon.service.daemon import Daemon
from adaptd.replay.holdout import HoldoutStore
from adaptd.replay.reservoir import ReservoirBuffer

pytestmark = pytest.mark.integration

# (drift, volatility, sign): in A the traded volume predicts the next return, in B it
# predicts the opposite, so one policy cannot serve both; the drifts tell them apart.
A, B = (0.02, 0.02, 1.0), (-0.02, 0.02, -1.0)
PHASE = 500
RETURN = 400 + 2 * PHASE
"""Where A returns: its policy answers a shift at or after this event."""
STREAM = "ACME"


def _value(daemon: Daemon, name: str, labels: dict[str, str] | None = None) -> float:
    value = daemon.metrics.registry.get_sample_value(name, labels or {})
    return math.nan if value is None else value


async def _policies(bootstrap: str, topic: str) -> list[PolicyMessage]:
    return [decode_message(r.value) for r in await read_topic(bootstrap, topic, idle_s=1.0)]


def _policy(
    messages: list[PolicyMessage], regime: int, known: bool, since: int
) -> PolicyMessage | None:
    """The first policy for ``regime`` (classified ``known`` or new) answering a shift at or
    after event ``since`` (the error channel may add shifts, and their policies, inside a
    segment; the first one after a change is the one that adapted to it)."""
    for m in messages:
        if m.regime is None or m.shift is None or m.shift.index < since:
            continue
        if (m.regime.id, m.regime.known) == (regime, known):
            return m
    return None


async def test_the_daemon_retains_regime_a_through_b_and_shows_it(
    settings_factory, redis_client
) -> None:
    settings, topics = await settings_factory(
        replay={"capacity": 100_000, "episode_size": 32},
        # Momentum over 60 events still describes the previous regime right after a shift.
        regimes={
            "novelty": 30.0,
            "exclude_features": ["mean_slow_z", "vol_ratio", "spread_z", "volume_z", "mom_60_z"],
        },
        # Any improvement on the query set publishes: the test is about what is retained.
        adaptation={"meta_interval_s": 0.5, "meta_min_items": 4, "gate_z": 0.0},
        # Each change found on the market channels, where it began: the regimes' policies
        # come from their own examples, whatever the live policy's errors did meanwhile.
        detection={"detectors": ["cusum"], "channels": ["returns", "volatility"], "skip": []},
    )
    bootstrap = settings.kafka.bootstrap_servers
    # A's return is sometimes caught only by the error channel, late: it lasts longer.
    events = volume_regimes_stream(STREAM, [(400, *B), (PHASE, *A), (PHASE, *B), (800, *A)])
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())
    await daemon.wait_started(task, 60)
    retention: dict[str, list[float]] = {}

    def updates() -> float:
        return _value(daemon, "adaptd_meta_updates_total")

    async def rounds_after(count: float, what: str) -> None:
        """Wait for meta-updates beyond ``count`` and a retention evaluation after them."""
        target = count + 24

        async def done() -> bool:
            return updates() >= target and _value(daemon, "adaptd_retention_regimes") >= 1

        await wait_until(done, 60, what)

    def adapted_since(index: int) -> bool:
        """An adaptation, published or rejected, answered a shift at or after ``index``
        (offsets are the stream's indices here: one stream from offset 0)."""
        return any(int(r.shift_id.rsplit(":", 1)[1]) >= index for r in daemon.publisher.history)

    async def published(regime: int, known: bool, since: int) -> bool:
        return (
            _policy(await _policies(bootstrap, topics.policies), regime, known, since) is not None
        )

    try:
        # Phase 1: a first regime (0), then A (regime 1): A's first policy, then training.
        await produce(bootstrap, topics.input, events[: 400 + PHASE])
        await wait_until(lambda: published(1, False, 400), 60, "regime A's first policy")
        await rounds_after(updates(), "meta-training on A")
        # Phase 2: B returns (regime 0, known) and is trained on: A is at risk now. Whether
        # the adaptation to B's return is published depends on a query set of a few examples
        # (the gate); what matters here is that B's episodes reach meta-training.
        await produce(bootstrap, topics.input, events[400 + PHASE : 400 + 2 * PHASE])
        await wait_until(
            lambda: asyncio.sleep(0, adapted_since(400 + PHASE)), 60, "adaptation to B's return"
        )
        await rounds_after(updates(), "meta-training on B")
        for stat in ("mean", "min"):
            retention[stat] = [_value(daemon, "adaptd_retention_ratio", {"stat": stat})]
        regimes_after_b = _value(daemon, "adaptd_retention_regimes")
        # Phase 3: A returns (regime 1, known) and is adapted from its last policy.
        await produce(bootstrap, topics.input, events[400 + 2 * PHASE :])
        await wait_until(lambda: published(1, True, RETURN), 60, "returning A's policy")
        await wait_until(lambda: asyncio.sleep(0, not daemon.publisher.inflight), 30, "idle")
        holdout = daemon.holdout
        assert holdout is not None
        held = await holdout.held()
        evaluated = daemon.trainer.retention.last if daemon.trainer.retention else None
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 60)

    # The retention metric comes from real evaluations of both regimes' held-out episodes.
    assert regimes_after_b == 2.0
    assert sorted((r.stream, r.regime) for r in held) == [(STREAM, 0), (STREAM, 1)]
    assert all(len(r.episodes) == 2 and len(r.reference) == 2 for r in held)
    assert evaluated is not None and len(evaluated.regimes) == 2
    assert all(math.isfinite(r.ratio) and r.episodes == 2 for r in evaluated.regimes)
    # ...and after training on the conflicting B, A's held-out episodes are served about as
    # well as when they were first evaluated.
    assert all(math.isfinite(v[0]) for v in retention.values()), retention
    assert retention["min"][0] > 0.7, retention

    # Returning A's policy started from A's first policy and is about as good on its query set.
    policies = await _policies(bootstrap, topics.policies)
    first_a, back_a = _policy(policies, 1, False, 400), _policy(policies, 1, True, RETURN)
    assert first_a is not None and back_a is not None
    assert back_a.regime.warm_start
    assert back_a.metrics["query_loss_after"] <= 1.5 * first_a.metrics["query_loss_after"] + 0.25

    # Held-out episodes were diverted: none of them is in the reservoir that meta-training
    # samples, and the metric counted each diversion.
    reservoir = ReservoirBuffer(
        redis_client, prefix=settings.redis.key_prefix, capacity=settings.replay.capacity
    )
    trained = {ep.id for ep in await reservoir.sample(100_000)}
    held_ids = {ep.id for r in held for ep in r.episodes}
    assert len(held_ids) == 4 and not held_ids & trained
    assert _value(daemon, "adaptd_replay_inserts_total", {"result": "held_out"}) == 4.0
    assert {(ep.regime) for ep in await reservoir.sample(100_000)} == {0, 1}

    # The checkpoint carries the penalty's Fisher and anchor with the meta-learner's state.
    sealer = settings.signing.sealer()  # the daemon seals its checkpoint
    state, info = await CheckpointStore(redis_client, settings.redis.key_prefix, sealer).load()
    checkpoint = checkpoint_format.loads(state)
    assert checkpoint["format"] == 3 and info["penalty"] == "online_ewc"
    assert checkpoint["protection"]["tasks_seen"] == info["consolidations"] > 0
    assert set(checkpoint["protection"]["fisher"]) == set(checkpoint["learner"]["params"])
    fresh = HoldoutStore(
        redis_client, prefix=settings.redis.key_prefix, per_regime=2, max_regimes=64
    )
    assert [r.reference for r in await fresh.held()] == [r.reference for r in held]
