"""The policy learner in a child process, so torch never competes with the event loop.

In one process, a torch job on a worker thread and the event loop share the GIL: each
small torch call that gives the GIL up waits up to a switch interval (5 ms) to get it
back from a busy loop, and a 3 ms adaptation stretched to hundreds of milliseconds under
load (measured; see docs/benchmarks.md). ``LearnerProcess`` has the same methods as
``PolicyLearner`` and forwards each call over a pipe to a spawned child that holds the
network and the meta-learned initialisation. The worker thread that makes the calls
waits in ``recv`` without the GIL. The child exits when the pipe closes, so it never
outlives the daemon, even after a SIGKILL.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..config.settings import AdaptationSettings, ContinualSettings
from .messages import Described


class LearnerError(RuntimeError):
    """The learner process failed or is gone."""


def _serve(conn: Connection, settings_json: str, in_dim: int, continual_json: str) -> None:
    """The child: build the learner, then answer calls until the pipe closes."""
    import torch

    from .policy_learner import PolicyLearner

    settings = AdaptationSettings.model_validate_json(settings_json)
    continual = ContinualSettings.model_validate_json(continual_json)
    torch.set_num_threads(settings.torch_threads)
    learner = PolicyLearner(settings, in_dim, continual)
    learner.warm_up()
    conn.send(("ok", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        method, args = message
        try:
            reply = ("ok", getattr(learner, method)(*args))
        except Exception as exc:  # the caller re-raises it with its context
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class LearnerProcess(Described):
    """A ``PolicyLearner`` in a child process. Calls block the calling thread (the torch
    worker thread), one at a time."""

    def __init__(
        self,
        settings: AdaptationSettings,
        in_dim: int,
        continual: ContinualSettings | None = None,
    ) -> None:
        self.settings = settings
        self.in_dim = in_dim
        self.continual = continual if continual is not None else ContinualSettings()
        self._meta_updates = 0
        self._conn: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._lock = threading.Lock()

    @property
    def meta_updates(self) -> int:
        """The child's count, mirrored from every result that carries it."""
        return self._meta_updates

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, timeout_s: float = 120.0) -> None:
        """Spawn the child and wait until its learner is built (blocking)."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(
                child,
                self.settings.model_dump_json(),
                self.in_dim,
                self.continual.model_dump_json(),
            ),
            name="adaptd-learner",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(timeout_s):
            self.close()
            raise LearnerError(f"the learner process did not start within {timeout_s} s")
        self._receive()

    def _receive(self) -> Any:
        assert self._conn is not None
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = None if self._proc is None else self._proc.exitcode
            raise LearnerError(f"the learner process is gone (exit code {code})") from exc
        if status == "error":
            raise LearnerError(value)
        return value

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            if self._conn is None:
                raise LearnerError("the learner process is not running")
            self._conn.send((method, args))
            return self._receive()

    def adapt(self, request: Any, deadline_s: float) -> Any:
        outcome = self._call("adapt", request, deadline_s)
        self._meta_updates = outcome.meta_updates
        return outcome

    def meta_train(self, episodes: Any) -> Any:
        result = self._call("meta_train", episodes)
        if result is not None:
            self._meta_updates = result.meta_updates
        return result

    def consolidate(self, episodes: Any) -> int:
        return self._call("consolidate", episodes)

    def evaluate(self, episodes: Any) -> list[float]:
        return self._call("evaluate", episodes)

    def init_numpy(self) -> dict[str, np.ndarray]:
        return self._call("init_numpy")

    def state_bytes(self) -> bytes:
        return self._call("state_bytes")

    def load_bytes(self, data: bytes) -> None:
        self._call("load_bytes", data)
        self._meta_updates = self._call("meta_update_count")

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to exit, then make sure it did, within about ``2 * timeout_s``.

        A call still waiting for the child holds the pipe: after ``timeout_s`` the child is
        killed instead of asked, which ends that call with a ``LearnerError``, so shutdown
        never waits on a child that stopped answering.
        """
        if self._conn is not None and self._lock.acquire(timeout=timeout_s):
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            finally:
                self._lock.release()
        if self._proc is not None:
            self._proc.join(timeout_s)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
