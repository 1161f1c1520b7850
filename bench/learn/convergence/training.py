"""One run of the convergence section: MAML meta-trained on a pool of waves (or fresh ones)
with checkpoint selection, then tested; all tasks adapted at once (:func:`adapted_errors`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptd.adapters.checks import non_negative_int
from adaptd.adapters.meta import MAML
from adaptd.adapters.meta.batched import adapt_tasks, task_losses
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import EarlyStopping, SinusoidTasks, meta_train

from .protocol import PROTOCOL, TEST_SEED, VAL_SEED

__all__ = ["adapted_errors", "train"]


def adapted_errors(learner: MAML, tasks: Sequence[Task], steps: int) -> np.ndarray:
    """Each task's query MSE after ``steps`` inner steps from ``learner.params``, all tasks in
    one batched inner loop (``steps=0``: the initialisation itself)."""
    non_negative_int("steps", steps)
    if not tasks:
        raise ValueError("tasks is empty")
    xs, ys, qxs, qys = (list(column) for column in zip(*tasks, strict=True))
    params = adapt_tasks(
        learner.net,
        learner.params,
        xs,
        ys,
        steps=steps,
        lr=learner.inner_lr,
        backend="autograd",
        loss=learner.loss,
    )
    return task_losses(learner.net, params, qxs, qys, learner.loss).double().numpy()


def train(job: dict[str, Any]) -> dict[str, Any]:
    """One run: meta-train on ``job['pool']`` waves (None: fresh) and test the best checkpoint."""
    p = PROTOCOL
    net = PolicyNet(1, tuple(p["hidden"]), activation=p["activation"])
    learner = MAML(
        net,
        inner_steps=p["inner_steps"],
        inner_lr=p["inner_lr"],
        meta_lr=p["meta_lr"],
        seed=job["seed"],
    )
    source = SinusoidTasks(pool_size=job["pool"], seed=job["seed"])
    shots = p["shots"]
    val = source.evaluation_tasks(job["val_tasks"], shots, p["test_queries"], seed=VAL_SEED)
    test = source.evaluation_tasks(job["test_tasks"], shots, p["test_queries"], seed=TEST_SEED)
    checks = job["iterations"] // job["eval_every"] + 2
    cpu_start = time.process_time()
    history = meta_train(
        learner,
        lambda: source.sample(p["meta_batch"], shots, shots),
        val,
        iterations=job["iterations"],
        eval_every=job["eval_every"],
        evaluate=lambda lrn, tasks: float(adapted_errors(lrn, tasks, p["inner_steps"]).mean()),
        stopper=EarlyStopping(patience=checks),  # never stops: checkpoint selection only
    )
    cpu_seconds = time.process_time() - cpu_start
    out = {
        "pool": job["pool"],
        "seed": job["seed"],
        "test": {str(s): adapted_errors(learner, test, s).tolist() for s in p["eval_steps"]},
        "val_steps": history.val_steps,
        "val_values": history.val_values,
        "best_step": history.best_step,
        "seconds": history.seconds,
        "cpu_seconds": cpu_seconds,
    }
    if job["pool"] is not None:
        # Error on the pool's own waves (fresh inputs): how far a small pool is memorised.
        own = source.sample(job["val_tasks"], shots, p["test_queries"])
        out["pool_error_1"] = float(adapted_errors(learner, own, 1).mean())
    return out
