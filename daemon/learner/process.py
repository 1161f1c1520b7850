"""The learner in a child process, so torch never competes with the event loop.

In one process, a torch job on a worker thread and the event loop share the GIL: each
small torch call that gives the GIL up waits up to a switch interval (5 ms) to get it
back from a busy loop, and a 3 ms adaptation stretched to hundreds of milliseconds under
load (measured; see docs/benchmarks.md). ``LearnerProcess`` has the methods of the
``Learner`` protocol and forwards each call over a pipe to a spawned child that holds
:class:`~.learners.TaskLearners`. The worker thread that makes the calls waits in ``recv``
without the GIL. The child exits when the pipe closes, so it never outlives the daemon,
even after a SIGKILL.

An exception in the child comes back as the same exception type where it pickles (a
``LearnerError`` otherwise), with the child's formatted traceback attached as its cause
(``RemoteTraceback``), as ``concurrent.futures`` does for its process pool.

This module does not import torch: only the child does.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..config.settings import AdaptationSettings, ContinualSettings
from .messages import AdaptationOutcome, AdaptJob, MetaRound, TaskSpec

__all__ = ["LearnerError", "LearnerProcess", "RemoteTraceback"]


class LearnerError(RuntimeError):
    """The learner process failed or is gone."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the learner process (as text)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _failure(exc: BaseException) -> tuple[str, Any, str]:
    """What the child sends for an exception: the exception itself when it pickles (so the
    caller can catch its type), else its description, and the formatted traceback."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return "error", f"{type(exc).__name__}: {exc}", text
    return "error", exc, text


def _serve(
    conn: Connection, settings_json: str, specs: Sequence[TaskSpec], continual_json: str
) -> None:
    """The child: build the learners, then answer calls until the pipe closes."""
    import torch

    from .learners import TaskLearners

    settings = AdaptationSettings.model_validate_json(settings_json)
    continual = ContinualSettings.model_validate_json(continual_json)
    torch.set_num_threads(settings.torch_threads)
    try:
        learners = TaskLearners(settings, specs, continual)
        learners.warm_up()
    except Exception as exc:
        conn.send(_failure(exc))
        return
    conn.send(("ok", None, ""))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        method, args = message
        try:
            reply: tuple[str, Any, str] = ("ok", getattr(learners, method)(*args), "")
        except Exception as exc:  # re-raised by the caller, with this traceback
            reply = _failure(exc)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class LearnerProcess:
    """:class:`~.learners.TaskLearners` in a child process. Calls block the calling thread
    (the torch worker thread), one at a time."""

    def __init__(
        self,
        settings: AdaptationSettings,
        specs: Sequence[TaskSpec],
        continual: ContinualSettings | None = None,
    ) -> None:
        self.settings = settings
        self.specs = tuple(specs)
        self.continual = continual if continual is not None else ContinualSettings()
        self._conn: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._lock = threading.Lock()
        self._ready = False
        self.start_timeout_s = 120.0
        """How long the child may take to build its learners: what :meth:`wait_ready`, and a
        call made before the child is ready, wait for at most."""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, timeout_s: float | None = None) -> None:
        """Spawn the child and wait until its learners are built (blocking)."""
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Spawn the child without waiting for it. It imports torch and builds its learners
        (seconds) while the caller goes on; the first call, or :meth:`wait_ready`, waits for
        that to end."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(
                child,
                self.settings.model_dump_json(),
                self.specs,
                self.continual.model_dump_json(),
            ),
            name="adaptd-learner",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._ready = False

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until the spawned child has built its learners; if it fails, or has not
        answered within ``timeout_s`` (None: ``start_timeout_s``), close it and raise the
        reason."""
        with self._lock:
            failure = self._handshake(self.start_timeout_s if timeout_s is None else timeout_s)
        if failure is not None:
            self.close()
            raise failure

    def _handshake(self, timeout_s: float) -> BaseException | None:
        """The child's first message (its learners built, or why not); the caller holds the
        lock. Returns the failure rather than raising it, so that the caller can release
        the lock before closing."""
        if self._ready:
            return None
        if self._conn is None:
            return LearnerError("the learner process is not running")
        if not self._conn.poll(timeout_s):
            return LearnerError(f"the learner process did not start within {timeout_s} s")
        try:
            self._receive()
        except BaseException as exc:
            return exc
        self._ready = True
        return None

    def _receive(self) -> Any:
        assert self._conn is not None
        try:
            status, value, text = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = None if self._proc is None else self._proc.exitcode
            raise LearnerError(f"the learner process is gone (exit code {code})") from exc
        if status == "error":
            error = value if isinstance(value, BaseException) else LearnerError(value)
            raise error from RemoteTraceback(text)
        return value

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            failure = self._handshake(self.start_timeout_s)
            if failure is not None:
                raise failure
            assert self._conn is not None
            self._conn.send((method, args))
            return self._receive()

    def adapt(self, job: AdaptJob, deadline_s: float) -> AdaptationOutcome:
        return self._call("adapt", job, deadline_s)

    def meta_train(self, task: str, episodes: Sequence[Any]) -> MetaRound | None:
        return self._call("meta_train", task, episodes)

    def consolidate(self, task: str, episodes: Sequence[Any]) -> int:
        return self._call("consolidate", task, episodes)

    def evaluate(self, task: str, episodes: Sequence[Any]) -> list[float]:
        return self._call("evaluate", task, episodes)

    def init_numpy(self, task: str) -> dict[str, np.ndarray]:
        return self._call("init_numpy", task)

    def meta_updates(self, task: str) -> int:
        return self._call("meta_updates", task)

    def state_bytes(self, task: str) -> bytes:
        return self._call("state_bytes", task)

    def load_bytes(self, task: str, data: bytes) -> None:
        self._call("load_bytes", task, data)

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to exit, then make sure it did, within about ``2 * timeout_s``.

        A call still waiting for the child holds the pipe: after ``timeout_s`` the child is
        killed instead of asked, which ends that call with a ``LearnerError``, so shutdown
        never waits on a child that stopped answering. A child that has not yet said it is
        ready is terminated at once.
        """
        if self._proc is not None and not self._ready and self._proc.is_alive():
            # Still importing torch or building its learners (a start that failed elsewhere):
            # nothing to lose, so it is not waited for.
            self._proc.terminate()
        elif self._conn is not None and self._lock.acquire(timeout=timeout_s):
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
        self._ready = False
