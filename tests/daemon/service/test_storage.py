"""Effect storage without a broker or Redis: dead letters and shifts to a recording sender
(the real record encoding), each task's episodes to its own in-memory hold-out store and
reservoir; retries, batch order and settling. The effects are real: a partition's output for
a shifting market on two policy tasks, with a bad record."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, ProducerClosed
from aiokafka.structs import ConsumerRecord
from service_support import MAX_BYTES, TOPIC, config_of, counter, market_records, small_settings
from structlog.testing import capture_logs

from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.io.outputs import Outputs
from adaptd.daemon.service.storage import EffectStore, EpisodeSink
from adaptd.replay.episode import Episode
from adaptd.replay.layout import AddResult

SETTINGS = small_settings(adaptation={"tasks": ["return", "direction_task:DirectionTask"]})
CONFIG = config_of(SETTINGS)


def effects(stream: str = "S", *, seed: int = 0, first_offset: int = 0) -> Effects:
    """What a partition asks for after a shifting market on ``stream`` and one bad record."""
    part = PartitionState(TOPIC, 0, CONFIG, MAX_BYTES)
    recs = market_records(stream, seed=seed, first_offset=first_offset)
    bad = ConsumerRecord(TOPIC, 0, first_offset + 300, 0, 0, b"S", b"{oops", None, 0, 0, ())
    out = Effects()
    part.process([*recs, bad], {}, out)
    assert out.shifts and out.dead_letters and out.regimes
    assert {task for task, _ in out.episodes} == {"return", "direction"}
    return out


def episodes_of(out: Effects, task: str) -> list[Episode]:
    return [episode for t, episode in out.episodes if t == task]


class RecordingOutputs(Outputs):
    """The real dead-letter encoding; ``send_all`` keeps each call's records (acknowledged at
    once), first raising the next of ``failures`` while there are any."""

    def __init__(self) -> None:
        super().__init__(producer=None, max_dead_letter_bytes=MAX_BYTES)  # type: ignore[arg-type]
        self.calls: list[list[tuple]] = []
        self.failures: list[Exception] = []
        self.refuse: list[int] = []  # positions refused for good, each call

    async def send_all(self, records: Sequence[tuple], on_drop=None) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append(list(records))
        for i in self.refuse:
            on_drop(i, MessageSizeTooLargeError())


class MemoryReservoir:
    """A task's reservoir (``Replay``): keeps what it is given; ``results`` cycles through the
    outcomes reported; ``hold`` makes the next call wait for its gate."""

    def __init__(self, log: list[tuple[str, str, str]], name: str) -> None:
        self.log, self.name = log, name
        self.calls = 0
        self.stored: list[Episode] = []
        self.results = [AddResult.STORED]
        self.failures: list[Exception] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    def hold(self) -> asyncio.Event:
        """Make the next call wait until the returned event is set."""
        self.gate = asyncio.Event()
        return self.gate

    async def add_many(self, episodes: Sequence[Episode]) -> list[AddResult]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.log.append((self.name, "start", episodes[0].id))
        self.entered.set()
        gate, self.gate = self.gate, None
        if gate is not None:
            await gate.wait()
        self.stored.extend(episodes)
        self.log.append((self.name, "end", episodes[0].id))
        return [self.results[i % len(self.results)] for i in range(len(episodes))]


class MemoryHoldout:
    """A task's held-out store (``HeldOut``): keeps every ``every``-th episode offered."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.offered: list[Episode] = []
        self.held: list[Episode] = []
        self.failures: list[Exception] = []

    async def offer_many(self, episodes: Sequence[Episode]) -> list[bool]:
        if self.failures:
            raise self.failures.pop(0)
        keep = [(len(self.offered) + i) % self.every == 0 for i in range(len(episodes))]
        self.offered.extend(episodes)
        self.held.extend(e for e, k in zip(episodes, keep, strict=True) if k)
        return keep


class Rig:
    def __init__(self, holdout_every: int = 3) -> None:
        self.log: list[tuple[str, str, str]] = []
        self.outputs = RecordingOutputs()
        self.reservoirs = {t: MemoryReservoir(self.log, t) for t in ("return", "direction")}
        self.holdout = MemoryHoldout(holdout_every)
        self.metrics = Metrics()
        self.store = EffectStore(
            self.outputs,
            {
                "return": EpisodeSink(self.reservoirs["return"], self.holdout),
                "direction": EpisodeSink(self.reservoirs["direction"]),
            },
            shift_topic="shifts",
            deadletter_topic="dlq",
            metrics=self.metrics,
        )

    async def store_all(self, *batches: Effects) -> None:
        for out in batches:
            await self.store.submit(out, time.perf_counter())
        await self.store.settle()


async def test_a_record_refused_for_good_is_counted_logged_and_passed() -> None:
    """The finding: one record no broker would take was retried every 5 s forever, and its
    partition stalled. Now it is dropped, named, and the batch is stored."""
    r, out = Rig(), effects()
    r.outputs.refuse = [0]  # the dead letter
    with capture_logs() as logs:
        await asyncio.wait_for(r.store_all(out), 5)
    (dead,) = out.dead_letters
    assert (
        counter(
            r.metrics, "adaptd_outputs_dropped_total", topic="dlq", error="MessageSizeTooLargeError"
        )
        == 1
    )
    (line,) = [e for e in logs if e["log_level"] == "error"]
    assert (line["topic"], line["source_offset"], line["source_partition"]) == (
        "dlq",
        dead.offset,
        dead.partition,
    )
    assert counter(r.metrics, "adaptd_processing_latency_seconds_count") == 1


async def test_dead_letters_and_shifts_are_sent_together_and_counted() -> None:
    r, out = Rig(), effects()
    with capture_logs() as logs:
        await r.store_all(out)
    (sent,) = r.outputs.calls  # one call: acknowledged together
    (dead,) = out.dead_letters
    (shift,) = out.shifts
    assert sent[0] == r.outputs.dead_letter_record("dlq", dead)
    topic, key, value, headers = sent[1]
    assert (topic, key, headers) == ("shifts", b"S", None)
    body = json.loads(value)
    assert (body["id"], body["source"]["offset"]) == (shift.id, shift.offset)
    assert len(sent) == 2

    m = r.metrics
    assert counter(m, "adaptd_dead_letters_total", reason="invalid_json") == 1
    detector, _, channel = shift.shift.triggers[0].partition(":")
    assert counter(m, "adaptd_shifts_total", detector=detector, channel=channel) == 1
    new = sum(1 for _, _, match in out.regimes if not match.known)
    assert counter(m, "adaptd_regimes_total", outcome="new") == new > 0
    assert counter(m, "adaptd_processing_latency_seconds_count") == 1
    assert [e["event"] for e in logs if e["log_level"] == "info"].count("shift detected") == 1


async def test_a_batch_without_records_to_send_does_not_call_the_sender() -> None:
    r = Rig()
    await r.store_all(Effects())
    assert r.outputs.calls == []
    assert counter(r.metrics, "adaptd_processing_latency_seconds_count") == 1


async def test_each_tasks_episodes_reach_its_sink_and_held_out_ones_never_train() -> None:
    r, out = Rig(holdout_every=3), effects()
    r.reservoirs["return"].results = [AddResult.STORED, AddResult.SKIPPED]
    await r.store_all(out)
    returns, directions = episodes_of(out, "return"), episodes_of(out, "direction")
    # The return task's go to its hold-out store first, all of them, in order ...
    assert r.holdout.offered == returns
    held = returns[::3]
    assert r.holdout.held == held
    # ... and only the rest to its reservoir; the direction task has no hold-out store.
    trained = [e for i, e in enumerate(returns) if i % 3]
    assert r.reservoirs["return"].stored == trained
    assert r.reservoirs["direction"].stored == directions

    m = r.metrics
    assert counter(m, "adaptd_replay_inserts_total", result="held_out") == len(held)
    skipped = len(trained) // 2
    assert counter(m, "adaptd_replay_inserts_total", result="skipped") == skipped
    stored = len(trained) - skipped + len(directions)
    assert counter(m, "adaptd_replay_inserts_total", result="stored") == stored


async def test_episodes_all_held_out_do_not_reach_the_reservoir() -> None:
    r, out = Rig(holdout_every=1), effects()
    await r.store_all(out)
    assert r.holdout.held == episodes_of(out, "return")
    assert r.reservoirs["return"].calls == 0
    assert r.reservoirs["direction"].stored == episodes_of(out, "direction")


async def test_failing_stores_are_retried_until_they_succeed() -> None:
    r, out = Rig(), effects()
    r.outputs.failures = [KafkaTimeoutError()]
    r.holdout.failures = [ConnectionError("redis is restarting")]
    r.reservoirs["return"].failures = [ConnectionError("a"), ConnectionError("b")]
    with capture_logs() as logs:
        await r.store_all(out)
    assert counter(r.metrics, "adaptd_send_errors_total") == 1
    assert counter(r.metrics, "adaptd_redis_errors_total") == 3
    assert len(r.outputs.calls) == 1
    returns = episodes_of(out, "return")
    assert r.holdout.offered == returns  # offered once: the failed call kept nothing
    assert r.reservoirs["return"].stored == [e for i, e in enumerate(returns) if i % 3]
    assert r.reservoirs["return"].calls == 3
    assert sorted(e["what"] for e in logs if e["event"] == "retrying") == [
        "hold out episodes",
        "send effects",
        "store episodes",
        "store episodes",
    ]


async def test_a_closed_producer_is_not_retried() -> None:
    r = Rig()
    r.outputs.failures = [ProducerClosed()]
    await r.store.submit(effects(), time.perf_counter())
    with pytest.raises(ProducerClosed):
        await r.store.settle()
    assert counter(r.metrics, "adaptd_send_errors_total") == 0


async def test_batches_are_stored_one_at_a_time_in_order() -> None:
    r = Rig()
    first, second = effects("A", seed=1), effects("B", seed=2, first_offset=301)
    a, b = (episodes_of(out, "direction")[0].id for out in (first, second))
    reservoir = r.reservoirs["direction"]
    release = reservoir.hold()
    await r.store.submit(first, time.perf_counter())
    # Handed over while the first batch is still being stored (it waits for `release`).
    submitting = asyncio.create_task(r.store.submit(second, time.perf_counter()))
    await reservoir.entered.wait()
    release.set()
    await submitting
    await r.store.settle()
    direction = [(what, ep) for name, what, ep in r.log if name == "direction"]
    assert direction == [("start", a), ("end", a), ("start", b), ("end", b)]
    assert len(r.outputs.calls) == 2
    assert r.outputs.calls[0][1][1] == b"A" and r.outputs.calls[1][1][1] == b"B"


async def test_settle_returns_only_once_storing_finished() -> None:
    r, out = Rig(), effects()
    await r.store.settle()  # nothing handed over yet: returns at once
    reservoir = r.reservoirs["direction"]
    release = reservoir.hold()
    await r.store.submit(out, time.perf_counter())
    await reservoir.entered.wait()
    order: list[str] = []

    async def settle() -> None:
        await r.store.settle()
        order.append("settled")

    settling = asyncio.create_task(settle())
    release.set()
    await settling
    assert reservoir.stored == episodes_of(out, "direction")
    assert order == ["settled"]
    assert r.log[-1] == ("direction", "end", reservoir.stored[0].id)
    assert counter(r.metrics, "adaptd_processing_latency_seconds_count") == 1
