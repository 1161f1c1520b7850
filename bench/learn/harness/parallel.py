"""Jobs over spawned worker processes of one torch thread each: how every section spreads its
training runs over the machine's cores.

Examples
--------
>>> run_parallel(abs, [-1, 2, -3], workers=1)
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adaptd.adapters.checks import positive_int

__all__ = ["one_torch_thread", "run_parallel"]


def run_parallel(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list[Any]:
    """``[function(job) for job in jobs]``, in ``workers`` spawned processes of one torch thread
    each when ``workers > 1`` (in this process otherwise). Jobs are handed out one at a time in
    the given order (put the longest first); ``function`` must be importable at module level."""
    positive_int("workers", workers)
    if workers == 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork after torch start-up is unsafe
    with context.Pool(min(workers, len(jobs)), initializer=one_torch_thread) as pool:
        return pool.map(function, jobs, chunksize=1)


def one_torch_thread() -> None:
    """Limit torch to one thread: two workers of two threads each thrash a 2-core machine."""
    import torch

    torch.set_num_threads(1)
