from __future__ import annotations

import math

import pytest

from bench.learn.harness.parallel import run_parallel


def test_run_parallel_gives_results_in_job_order_from_spawned_workers() -> None:
    assert run_parallel(math.sqrt, [1.0, 4.0, 9.0], workers=2) == [1.0, 2.0, 3.0]
    assert run_parallel(math.sqrt, [], workers=2) == []
    with pytest.raises(ValueError, match="workers"):
        run_parallel(math.sqrt, [1.0], workers=0)


def test_one_worker_runs_in_this_process_in_order() -> None:
    jobs = [{"n": i} for i in range(5)]
    assert run_parallel(str, jobs, workers=1) == [str(job) for job in jobs]
