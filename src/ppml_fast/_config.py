"""Process-wide settings for the native kernels (thread count)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

_lock = threading.Lock()


def _default_threads() -> int:
    env = os.environ.get("PPML_FAST_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


_num_threads = _default_threads()


def get_num_threads() -> int:
    """Number of threads the native kernels use (default: all cores, or $PPML_FAST_NUM_THREADS)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the native kernels use.

    Seeded results do not depend on this: kernels split their work and their random
    stream into fixed blocks, whatever the thread count.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    with _lock:
        _num_threads = n


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: run the enclosed kernels on ``n`` threads, then restore the setting."""
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)
