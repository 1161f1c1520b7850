"""A task's meta-trainer without Redis or torch: restoring its checkpoint, rounds of
meta-updates, consolidation, checkpoints, retention and gauges, and a loop that outlives a
failed round. The reservoir, the checkpoint store, the learner and the retention monitor are
fakes; the jobs run on a real torch worker (threads=None)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pytest
from service_support import counter, small_settings, weights
from structlog.testing import capture_logs

from adaptd.daemon.io.metrics import Metrics
from adaptd.daemon.learner.messages import CHECKPOINT_MAGIC, MetaRound
from adaptd.daemon.service.configs import task_models, tasks_of
from adaptd.daemon.service.metatrain import MetaSchedule, MetaTrainer
from adaptd.daemon.service.worker import TorchWorker
from adaptd.replay.samplers import RegimeSampler, Sampler, UniformSampler

SETTINGS = small_settings()
(MODEL,) = task_models(SETTINGS, tasks_of(SETTINGS))
ARCH = MODEL.architecture
IN_DIM = ARCH["in_dim"]
SAMPLER = UniformSampler()
SCHEDULE = MetaSchedule(
    interval_s=0.0,
    min_items=10,
    steps=3,
    batch=4,
    sampler=SAMPLER,
    algorithm="anil",
    penalty="none",
    fisher_episodes=6,
    seed=0,
)


class Stats(NamedTuple):
    size: int
    seen: int


class MemoryReservoir:
    """What meta-training reads of a reservoir (``Reservoir``): its size, and samples of
    numbered stand-in episodes. ``stats`` raises the next of ``failures`` while there are
    any, and sets ``polled`` from its ``polls``-th call on."""

    def __init__(self, size: int, seen: int = 0, polls: int = 0) -> None:
        self.size, self.seen = size, seen
        self.samples: list[tuple[int, Sampler, random.Random, list[str]]] = []
        self.failures: list[Exception] = []
        self.calls = 0
        self.polls = polls
        self.polled = asyncio.Event()

    async def stats(self) -> Stats:
        self.calls += 1
        if self.calls >= self.polls:
            self.polled.set()
        if self.failures:
            raise self.failures.pop(0)
        return Stats(self.size, self.seen)

    async def sample(self, n: int, *, sampler: Sampler, rng: random.Random) -> list[Any]:
        drawn = [f"ep{len(self.samples)}.{i}" for i in range(n)]
        self.samples.append((n, sampler, rng, drawn))
        return drawn  # stand-ins: the fake learner only passes them on


class MemoryCheckpoints:
    """The checkpoint store in memory (``Checkpoints``)."""

    def __init__(self, log: list[str], stored: tuple[bytes, dict[str, Any]] | None = None):
        self.log = log
        self.stored = stored
        self.saves: list[tuple[bytes, dict[str, Any]]] = []

    async def save(self, state: bytes, info: dict[str, Any]) -> None:
        self.log.append("checkpoint")
        self.saves.append((state, info))
        self.stored = (state, info)

    async def load(self) -> tuple[bytes, dict[str, Any]] | None:
        return self.stored


class ScriptedLearner:
    """Meta-training's side of the learner: each ``meta_train`` returns the next scripted
    round (None: no update); every call notes its thread."""

    def __init__(self, rounds: Sequence[MetaRound | None] = ()) -> None:
        self.rounds = list(rounds)
        self.updates = 0
        self.consolidations = 0
        self.trained: list[tuple[str, list[str]]] = []
        self.consolidated: list[tuple[str, list[str]]] = []
        self.loaded: list[tuple[str, bytes]] = []
        self.threads: set[str] = set()

    def _call(self, task: str) -> None:
        assert task == "return"
        self.threads.add(threading.current_thread().name)

    def meta_train(self, task: str, episodes: Sequence[Any]) -> MetaRound | None:
        self._call(task)
        self.trained.append((task, list(episodes)))
        result = self.rounds.pop(0)
        if result is not None:
            self.updates = result.meta_updates
        return result

    def consolidate(self, task: str, episodes: Sequence[Any]) -> int:
        self._call(task)
        self.consolidated.append((task, list(episodes)))
        self.consolidations += 1
        return self.consolidations

    def init_numpy(self, task: str) -> dict[str, np.ndarray]:
        self._call(task)
        return weights(IN_DIM, seed=100 + self.updates)

    def meta_updates(self, task: str) -> int:
        self._call(task)
        return self.updates

    def state_bytes(self, task: str) -> bytes:
        self._call(task)
        return b"state after %d" % self.updates

    def load_bytes(self, task: str, data: bytes) -> None:
        self._call(task)
        self.loaded.append((task, data))


class Retention:
    """The retention monitor as meta-training calls it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def evaluate(self) -> None:
        self.log.append("retention")


def meta_round(updates: int, loss: float) -> MetaRound:
    return MetaRound(
        tasks=4,
        query_loss_before=loss * 2,
        query_loss_after=loss,
        seconds=0.01,
        meta_updates=updates,
        init=weights(IN_DIM, seed=updates),
    )


@dataclass
class Rig:
    trainer: MetaTrainer
    learner: ScriptedLearner
    reservoir: MemoryReservoir
    checkpoints: MemoryCheckpoints
    metrics: Metrics
    worker: TorchWorker
    log: list[str]


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    workers: list[TorchWorker] = []

    def build(
        *,
        schedule: MetaSchedule = SCHEDULE,
        rounds: Sequence[MetaRound | None] = (),
        size: int = 50,
        stored: tuple[bytes, dict[str, Any]] | None = None,
        retention: bool = True,
        read_pickled: bool = False,
    ) -> Rig:
        log: list[str] = []
        worker = TorchWorker()
        workers.append(worker)
        learner, reservoir = ScriptedLearner(rounds), MemoryReservoir(size, seen=3 * size)
        checkpoints, metrics = MemoryCheckpoints(log, stored), Metrics()
        trainer = MetaTrainer(
            "return",
            ARCH,
            schedule,
            learner,
            worker,
            reservoir,
            checkpoints,
            metrics,
            Retention(log) if retention else None,  # type: ignore[arg-type]
            read_pickled=read_pickled,
        )
        return Rig(trainer, learner, reservoir, checkpoints, metrics, worker, log)

    try:
        yield build
    finally:
        for worker in workers:
            await worker.aclose()


def serves(trainer: MetaTrainer, params: dict[str, np.ndarray]) -> bool:
    """True when the trainer's served initialisation computes what ``params`` do."""
    x = np.random.default_rng(0).normal(size=(5, IN_DIM))
    assert trainer.init is not None
    expected = np.tanh(x @ params["layers.0.weight"].T + params["layers.0.bias"])
    expected = expected @ params["layers.2.weight"].T + params["layers.2.bias"]
    return np.allclose(trainer.init.predict(x).reshape(5, -1), expected, atol=1e-5)


def info(updates: int, consolidations: int = 0, penalty: str = "none") -> dict[str, Any]:
    return {
        "architecture": ARCH,
        "meta_algorithm": "anil",
        "meta_updates": updates,
        "penalty": penalty,
        "consolidations": consolidations,
    }


# -- restore ----------------------------------------------------------------------------------


SAVED = CHECKPOINT_MAGIC + b"saved state"


async def test_restore_loads_a_checkpoint_that_fits(make) -> None:
    r = make(stored=(SAVED, info(42)))
    r.learner.updates = 42  # what loading the state gives the learner
    assert r.trainer.init is None
    assert await r.trainer.restore() is True
    assert r.learner.loaded == [("return", SAVED)]
    assert r.trainer.meta_updates == 42
    assert serves(r.trainer, weights(IN_DIM, seed=142))
    assert r.learner.threads == {r.worker.name}  # learner calls run on the worker


@pytest.mark.parametrize(
    "stored",
    [
        {**info(7), "architecture": {**ARCH, "hidden": [64, 64]}},
        {**info(7), "architecture": {**ARCH, "in_dim": IN_DIM + 1}},
        {**info(7), "meta_algorithm": "maml"},
        {"meta_updates": 7},
    ],
    ids=["other-hidden", "other-features", "other-algorithm", "undescribed"],
)
async def test_restore_refuses_a_checkpoint_of_another_network(make, stored) -> None:
    r = make(stored=(SAVED, stored))
    with capture_logs() as logs:
        assert await r.trainer.restore() is False
    assert r.learner.loaded == []
    (warning,) = logs
    assert warning["log_level"] == "warning"
    assert warning["configured"] == ARCH
    assert r.trainer.meta_updates == 0
    assert serves(r.trainer, weights(IN_DIM, seed=100))  # the fresh initialisation


async def test_an_earlier_versions_pickled_checkpoint_is_read_only_by_leave(make) -> None:
    pickled = b"PK\x03\x04 a torch.save archive"
    r = make(stored=(pickled, info(42)))
    with capture_logs() as logs:
        assert await r.trainer.restore() is False
    assert r.learner.loaded == []
    assert "state.read_pickled_snapshots" in logs[0]["event"]
    assert serves(r.trainer, weights(IN_DIM, seed=100))  # the fresh initialisation
    r = make(stored=(pickled, info(42)), read_pickled=True)
    assert await r.trainer.restore() is True
    assert r.learner.loaded == [("return", pickled)]


async def test_restore_without_a_checkpoint_serves_the_initialisation(make) -> None:
    r = make()
    assert await r.trainer.restore() is False
    assert r.learner.loaded == []
    assert serves(r.trainer, weights(IN_DIM, seed=100))


# -- rounds -----------------------------------------------------------------------------------


async def test_a_round_below_min_items_only_exports_the_replay_gauges(make) -> None:
    r = make(size=9)
    assert await r.trainer.round() == 0
    assert r.reservoir.samples == [] and r.learner.trained == []
    assert r.checkpoints.saves == [] and r.log == []
    assert counter(r.metrics, "adaptd_replay_items") == 9
    assert counter(r.metrics, "adaptd_replay_seen") == 27


async def test_a_round_makes_its_steps_checkpoints_and_measures_retention(make) -> None:
    rounds = [meta_round(1, 0.3), meta_round(2, 0.2), meta_round(3, 0.1)]
    r = make(rounds=rounds, size=10)
    assert await r.trainer.round() == 3
    assert [(n, s, rng) for n, s, rng, _ in r.reservoir.samples] == [
        (4, SAMPLER, r.trainer.rng)
    ] * 3
    assert r.learner.trained == [("return", drawn) for *_, drawn in r.reservoir.samples]
    assert r.learner.consolidated == []  # no penalty
    assert (r.trainer.meta_updates, r.trainer.last) == (3, rounds[-1])
    assert serves(r.trainer, rounds[-1].init)
    assert r.checkpoints.saves == [(b"state after 3", info(3))]
    assert r.log == ["checkpoint", "retention"]
    assert counter(r.metrics, "adaptd_meta_updates_total") == 3
    assert counter(r.metrics, "adaptd_meta_query_loss") == pytest.approx(0.1)
    assert counter(r.metrics, "adaptd_replay_items") == 10
    assert r.learner.threads == {r.worker.name}


async def test_steps_without_an_update_do_not_count(make) -> None:
    r = make(rounds=[None, meta_round(5, 0.4), None])
    assert await r.trainer.round() == 1
    assert len(r.learner.trained) == 3
    assert r.trainer.meta_updates == 5
    assert counter(r.metrics, "adaptd_meta_updates_total") == 1
    assert r.checkpoints.saves == [(b"state after 5", info(5))]

    r = make(rounds=[None, None, None])
    assert await r.trainer.round() == 0
    assert r.checkpoints.saves == [] and r.log == []  # nothing new to keep or measure
    assert r.trainer.last is None


async def test_a_penalty_is_consolidated_on_regime_samples_before_the_checkpoint(make) -> None:
    schedule = replace(SCHEDULE, steps=1, penalty="online_ewc")
    r = make(schedule=schedule, rounds=[meta_round(1, 0.5), meta_round(2, 0.4)])
    assert await r.trainer.round() == 1
    n, sampler, rng, drawn = r.reservoir.samples[-1]
    assert (n, type(sampler), rng) == (6, RegimeSampler, r.trainer.rng)
    assert r.learner.consolidated == [("return", drawn)]
    assert r.checkpoints.saves == [(b"state after 1", info(1, 1, "online_ewc"))]
    assert await r.trainer.round() == 1
    assert r.checkpoints.saves[-1] == (b"state after 2", info(2, 2, "online_ewc"))


async def test_without_export_the_shared_gauges_are_left_to_the_first_task(make) -> None:
    r = make(schedule=replace(SCHEDULE, export=False), rounds=[meta_round(1, 0.7)] * 3)
    assert await r.trainer.round() == 3
    for gauge in ("adaptd_replay_items", "adaptd_replay_seen", "adaptd_meta_query_loss"):
        assert counter(r.metrics, gauge) == 0.0
    assert counter(r.metrics, "adaptd_meta_updates_total") == 3  # counted for every task


async def test_a_round_without_a_retention_monitor_still_checkpoints(make) -> None:
    r = make(rounds=[meta_round(1, 0.7)] * 3, retention=False)
    assert await r.trainer.round() == 3
    assert r.log == ["checkpoint"]


# -- the loop ---------------------------------------------------------------------------------


async def test_a_failed_round_is_counted_and_meta_training_goes_on(make) -> None:
    r = make(size=0)
    r.reservoir.failures = [ConnectionError("redis is restarting")]
    r.reservoir.polls = 3  # two rounds after the failed one
    with capture_logs() as logs:
        loop = asyncio.create_task(r.trainer.run())
        await r.reservoir.polled.wait()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    assert counter(r.metrics, "adaptd_meta_errors_total") == 1
    (warning,) = [e for e in logs if e["event"] == "meta-training round failed"]
    assert warning["error"] == repr(ConnectionError("redis is restarting"))
    assert r.reservoir.calls >= 3
