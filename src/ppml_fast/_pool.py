"""The process-wide thread pool of the column kernels (aggregation), next to ``_config``.

Numba kernels that release the GIL run on these threads, one column range each
(:func:`run_columns`); the thread count is :func:`ppml_fast.get_num_threads`. A forked
child starts a new pool on first use (it inherits the object but not its threads).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import _config

__all__ = ["executor", "run_columns"]

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()

#: Below this many element-operations a kernel runs on the calling thread alone.
_PARALLEL_MIN_WORK = 1 << 18


def _reset_pool_in_child() -> None:
    """A forked child inherits the pool object but not its threads: start a new one."""
    global _pool, _pool_size, _pool_lock
    _pool = None
    _pool_size = 0
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_in_child)


def executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, with at least ``workers`` threads. A pool that is too small is
    replaced, not shut down: another thread may still be submitting to it (its idle
    threads exit once it is garbage collected)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool_size = max(workers, (os.cpu_count() or 1) - 1)
            _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="ppml_fast")
        return _pool


def run_columns(kernel: Callable[..., Any], d: int, work: int, *args: Any) -> list[Any]:
    """Run ``kernel(*args, j0, j1)`` over ``[0, d)`` split into one column range per
    thread (``_config.get_num_threads()``; one range when ``work`` is small). The kernels
    release the GIL; each column is computed by exactly one call."""
    nthreads = _config.get_num_threads()
    if work < _PARALLEL_MIN_WORK:
        nthreads = 1
    nthreads = max(1, min(nthreads, d // 64))
    if nthreads == 1:
        return [kernel(*args, 0, d)]
    step = -(-d // nthreads)
    step = -(-step // 64) * 64  # ranges start on whole cache lines
    bounds = [(j, min(d, j + step)) for j in range(0, d, step)]
    pool = executor(len(bounds) - 1)
    futures = [pool.submit(kernel, *args, j0, j1) for j0, j1 in bounds[1:]]
    first = kernel(*args, *bounds[0])
    return [first, *(f.result() for f in futures)]
