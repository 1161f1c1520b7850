"""Opening the daemon's collaborators from the Settings, in dependency order, each closed by
the exit stack in reverse order.

Every part is built here with what it needs passed in, so no part builds another and none is
wired to another after construction: Redis and the per-task replay and hold-out stores, the
learner (a child process, or in-process with ``adaptation.isolation=thread``) and its worker
thread, one meta-trainer per task, the producer and effect storage, the consumer, ownership of
its partitions, the publisher, and the rebalance listener that joins the last two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from adaptd.replay.holdout import HoldoutStore
from adaptd.replay.reservoir import ReservoirBuffer
from adaptd.replay.samplers import sampler_for

from ..config.settings import Settings
from ..core.signing import Signer
from ..io.checkpoints import CheckpointStore
from ..io.clients import make_consumer, make_producer, make_redis
from ..io.logs import get_logger
from ..io.metrics import Metrics
from ..io.outputs import Outputs
from ..io.stores import PolicyStore, SnapshotStore
from ..learner.messages import Learner
from ..learner.process import LearnerProcess
from .configs import TaskModel, algorithm_of, stream_config, task_models, tasks_of
from .metatrain import MetaSchedule, MetaTrainer
from .ownership import Ownership
from .publishing import Publisher
from .rebalance import RebalanceListener
from .retention import RetentionMonitor
from .storage import EffectStore, EpisodeSink
from .worker import TorchWorker

log = get_logger("adaptd.build")

__all__ = ["Services", "open_services", "start_learning"]


@dataclass(frozen=True)
class Services:
    """Everything a running daemon uses."""

    redis: aioredis.Redis
    models: tuple[TaskModel, ...]
    learner: Learner
    worker: TorchWorker
    trainers: tuple[MetaTrainer, ...]
    holdouts: dict[str, HoldoutStore]
    producer: AIOKafkaProducer
    effects: EffectStore
    consumer: AIOKafkaConsumer
    ownership: Ownership
    publisher: Publisher
    listener: RebalanceListener
    """The consumer subscribes with it once the input topic exists (``Daemon``)."""
    boot: Callable[[], None]
    """Blocks until the learner is ready (its child has imported torch and built its
    learners): run off the event loop, by :func:`start_learning`."""
    ready: asyncio.Event
    """Set by :func:`start_learning` once the learner is ready and the trainers restored;
    the rebalance listener takes partitions only then."""


async def open_services(settings: Settings, metrics: Metrics, stack: AsyncExitStack) -> Services:
    """Open every collaborator (closed by ``stack``); the consumer is neither started nor
    subscribed, and the learner is still starting: :func:`start_learning` waits for it."""
    s = settings
    tasks = tasks_of(s)
    models = task_models(s, tasks)
    redis = make_redis(s.redis)
    stack.push_async_callback(redis.aclose)
    sinks: dict[str, EpisodeSink] = {}
    holdouts: dict[str, HoldoutStore] = {}
    for model in models:
        reservoir = ReservoirBuffer(redis, prefix=model.key_prefix, capacity=s.replay.capacity)
        await reservoir.open()
        holdout = await _open_holdout(s, redis, model.key_prefix)
        if holdout is not None:
            holdouts[model.name] = holdout
        sinks[model.name] = EpisodeSink(reservoir, holdout)
    learner, initializer, boot = await _open_learner(s, models, stack)
    worker = TorchWorker(initializer)
    stack.push_async_callback(worker.aclose)
    trainers = []
    for i, model in enumerate(models):
        holdout = holdouts.get(model.name)
        retention = None
        if holdout is not None:
            retention = RetentionMonitor(
                holdout,
                learner,
                worker,
                metrics,
                s.continual.retention_floor,
                task=model.name,
                export=i == 0,
            )
        trainer = MetaTrainer(
            model.name,
            model.architecture,
            _schedule(s, export=i == 0),
            learner,
            worker,
            sinks[model.name].reservoir,  # type: ignore[arg-type]
            CheckpointStore(redis, model.key_prefix, s.signing.sealer()),
            metrics,
            retention,
            read_pickled=s.state.read_pickled_snapshots,
        )
        trainers.append(trainer)

    producer = make_producer(s.kafka)
    # Closed even when it never started (an unreachable broker): else asyncio reports an
    # unclosed producer after the daemon's own error.
    stack.push_async_callback(producer.stop)
    await producer.start()
    outputs = Outputs(producer, s.kafka.max_message_bytes, s.kafka.max_output_bytes)
    effects = EffectStore(
        outputs,
        sinks,
        shift_topic=s.kafka.shift_topic,
        deadletter_topic=s.kafka.deadletter_topic,
        metrics=metrics,
    )
    consumer = make_consumer(s.kafka, max_poll_records=s.kafka.max_poll_records)
    ownership = Ownership(
        consumer,
        SnapshotStore(
            redis,
            s.redis.key_prefix,
            s.kafka.group_id,
            s.state.restore_chunk,
            sealer=s.signing.sealer(),
            on_reject=metrics.snapshots_refused.inc,
            read_pickled=s.state.read_pickled_snapshots,
        ),
        effects,
        stream_config(s, tasks),
        metrics,
        s.kafka.max_message_bytes,
        s.kafka.stall_timeout_s,
        s.state.max_live_streams,
        s.state.max_stored_streams,
    )
    publisher = Publisher(
        ownership,
        worker,
        learner,
        outputs,
        PolicyStore(redis, s.redis.key_prefix),
        {m.name: m for m in models},
        policy_topic=s.kafka.policy_topic,
        deadline_s=s.adaptation.deadline_s,
        algorithm=lambda updates: algorithm_of(s, updates),
        metrics=metrics,
        signer=signer_of(s),
    )
    ready = asyncio.Event()
    return Services(
        redis=redis,
        models=models,
        learner=learner,
        worker=worker,
        trainers=tuple(trainers),
        holdouts=holdouts,
        producer=producer,
        effects=effects,
        consumer=consumer,
        ownership=ownership,
        publisher=publisher,
        listener=RebalanceListener(ownership, publisher, s.shutdown_grace_s, ready),
        boot=boot,
        ready=ready,
    )


async def start_learning(services: Services) -> None:
    """Wait for the learner, then restore each task's meta-trained initialisation.

    The learner process is spawned by :func:`open_services` and imports torch and builds
    its learners (seconds) while the daemon starts its clients and joins its consumer group
    (seconds too), so that a start takes the longer of the two rather than their sum.
    """
    await asyncio.get_running_loop().run_in_executor(None, services.boot)
    for trainer in services.trainers:
        await trainer.restore()
    services.ready.set()


def signer_of(s: Settings) -> Signer | None:
    """The policies' signer (``signing.key_file`` or ``signing.key``); None, logged as a
    warning, when no key is set."""
    pem = s.signing.private_pem()
    if pem is None:
        log.warning(
            "policies are published unsigned: subscribers that verify will refuse them, and "
            "partition snapshots are stored unsealed (signing.key_file)"
        )
        return None
    signer = Signer.from_pem(pem)
    log.info("policies are signed, snapshots sealed", key_id=signer.key_id)
    return signer


def _schedule(s: Settings, *, export: bool) -> MetaSchedule:
    a, c = s.adaptation, s.continual
    return MetaSchedule(
        interval_s=a.meta_interval_s,
        min_items=a.meta_min_items,
        steps=a.meta_steps,
        batch=a.meta_batch,
        sampler=sampler_for(s.replay.sample_strategy),
        algorithm=a.meta_algorithm,
        penalty=c.penalty,
        fisher_episodes=c.fisher_episodes,
        seed=a.seed,
        export=export,
    )


async def _open_holdout(s: Settings, redis: aioredis.Redis, prefix: str) -> HoldoutStore | None:
    c = s.continual
    if c.holdout_per_regime == 0:
        return None
    holdout = HoldoutStore(
        redis,
        prefix=prefix,
        per_regime=c.holdout_per_regime,
        max_regimes=c.holdout_max_regimes,
        min_examples=min(c.holdout_min_examples, s.replay.episode_size),
    )
    await holdout.open()
    return holdout


async def _open_learner(
    s: Settings, models: tuple[TaskModel, ...], stack: AsyncExitStack
) -> tuple[Learner, Callable[[], object] | None, Callable[[], None]]:
    """The learner, what the worker thread runs first (nothing for a learner process), and
    what blocks until the learner is ready."""
    specs = [m.spec for m in models]
    loop = asyncio.get_running_loop()
    if s.adaptation.isolation == "thread":
        # The one place the daemon's own process imports torch: on request only.
        from ..learner.learners import TaskLearners, use_threads

        local = TaskLearners(s.adaptation, specs, s.continual)
        await loop.run_in_executor(None, local.warm_up)
        return local, partial(use_threads, s.adaptation.torch_threads), lambda: None
    learner = LearnerProcess(s.adaptation, specs, s.continual)
    learner.spawn()
    stack.push_async_callback(loop.run_in_executor, None, learner.close)
    return learner, None, learner.wait_ready
