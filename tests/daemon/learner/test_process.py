"""The learner process: calls reach the child, and closing never hangs on it."""

from __future__ import annotations

import time

from adaptd.daemon.config.settings import AdaptationSettings
from adaptd.daemon.learner.process import LearnerProcess


def test_a_call_reaches_the_child_and_close_asks_it_to_exit() -> None:
    learner = LearnerProcess(AdaptationSettings(), in_dim=4)
    learner.start()
    proc = learner._proc
    assert proc is not None
    params = learner.init_numpy()
    assert params and all(v.dtype.name == "float32" for v in params.values())
    learner.close()
    assert proc.exitcode == 0  # asked, not killed


def test_close_does_not_wait_for_a_call_stuck_on_the_child() -> None:
    learner = LearnerProcess(AdaptationSettings(), in_dim=4)
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
