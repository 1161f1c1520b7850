"""The learner process: calls reach the child, its errors come back with their traceback, and
closing never hangs on it."""

from __future__ import annotations

import signal
import time

import pytest

from adaptd.daemon.config.settings import AdaptationSettings
from adaptd.daemon.learner.messages import TaskSpec
from adaptd.daemon.learner.process import LearnerError, LearnerProcess, RemoteTraceback

SPEC = TaskSpec("return", in_dim=4, out_dim=1, loss="mse", output_scale=0.1, output="y")


def test_a_call_reaches_the_child_and_close_asks_it_to_exit() -> None:
    learner = LearnerProcess(AdaptationSettings(), [SPEC])
    learner.start()
    proc = learner._proc
    assert proc is not None
    params = learner.init_numpy("return")
    assert params and all(v.dtype.name == "float32" for v in params.values())
    assert params["layers.0.weight"].shape == (32, 4)
    assert learner.meta_updates("return") == 0
    learner.close()
    assert proc.exitcode == 0  # asked, not killed


def test_an_error_in_the_child_keeps_its_type_and_its_traceback() -> None:
    learner = LearnerProcess(AdaptationSettings(), [SPEC])
    learner.start()
    try:
        with pytest.raises(KeyError, match="no learner for policy task 'nope'") as caught:
            learner.init_numpy("nope")
        cause = caught.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "Traceback (most recent call last)" in cause.text
        assert "learners.py" in cause.text and "_of" in cause.text  # where it was raised
        # The child is still serving after an error.
        assert learner.meta_updates("return") == 0
    finally:
        learner.close()


def test_a_child_that_cannot_build_its_learners_fails_start_with_the_reason() -> None:
    bad = SPEC._replace(loss="cross_entropy")  # one output cannot be a classifier
    learner = LearnerProcess(AdaptationSettings(), [bad])
    with pytest.raises(ValueError, match="cross_entropy") as caught:
        learner.start()
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert learner._proc is None  # cleaned up


def test_close_does_not_wait_for_a_call_stuck_on_the_child() -> None:
    learner = LearnerProcess(AdaptationSettings(), [SPEC])
    learner.start()
    proc = learner._proc
    assert proc is not None
    learner._lock.acquire()  # as a call whose answer never comes holds it
    try:
        started = time.monotonic()
        learner.close(timeout_s=0.5)
        assert time.monotonic() - started < 5
        assert not proc.is_alive() and proc.exitcode != 0  # killed
    finally:
        learner._lock.release()


def test_a_call_made_before_the_spawned_child_is_ready_waits_for_it() -> None:
    """spawn() returns at once; the first call takes the child's readiness message first, so
    the answer it gets is its own."""
    learner = LearnerProcess(AdaptationSettings(), [SPEC])
    learner.spawn()
    try:
        assert learner.meta_updates("return") == 0
        assert learner.init_numpy("return")["layers.0.weight"].shape == (32, 4)
        learner.wait_ready()  # already ready: returns at once
    finally:
        learner.close()


def test_a_spawned_child_that_cannot_build_its_learners_fails_wait_ready_and_each_call() -> None:
    bad = SPEC._replace(loss="cross_entropy")
    learner = LearnerProcess(AdaptationSettings(), [bad])
    learner.spawn()
    try:
        with pytest.raises(ValueError, match="cross_entropy"):
            learner.meta_updates("return")  # a call that comes first gets the reason too
        with pytest.raises(LearnerError, match="gone"):
            learner.meta_updates("return")
    finally:
        learner.close()
    learner.spawn()
    with pytest.raises(ValueError, match="cross_entropy") as caught:
        learner.wait_ready()
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert learner._proc is None  # closed by wait_ready


def test_a_spawned_child_closed_before_it_is_ready_is_terminated() -> None:
    """A start that fails elsewhere (an unreachable broker) does not wait for the child to
    import torch and build its learners."""
    learner = LearnerProcess(AdaptationSettings(), [SPEC])
    learner.spawn()
    proc = learner._proc
    assert proc is not None
    learner.close()
    assert not proc.is_alive() and proc.exitcode == -signal.SIGTERM
    with pytest.raises(LearnerError, match="not running"):
        learner.meta_updates("return")
