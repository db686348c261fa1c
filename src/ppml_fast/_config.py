"""Process-wide settings for the native kernels: thread count and ISA level."""

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


# --- ISA level -----------------------------------------------------------------------------


def get_isa() -> str:
    """ISA level the native kernels run at: ``"avx512"``, ``"avx2"`` or ``"generic"``.

    Chosen once, when the first kernel module loads: the highest level this CPU supports,
    or the lower one the environment variable ``PPML_FAST_ISA`` names. ``avx512`` needs
    AVX-512 F/DQ/BW/VL (IFMA and VAES-512 are used where present); ``avx2`` needs AVX2,
    FMA, BMI1/2, AES-NI and PCLMUL (VAES-256 is used where present); ``generic`` is portable
    C that the compiler vectorised for the build's baseline, the level every CPU has.
    """
    from ._native import LEVELS, level

    return LEVELS[level()]


def available_isas() -> tuple[str, ...]:
    """The ISA levels this CPU can run, lowest first (``generic`` is always there)."""
    from ._native import LEVELS, cpu_level

    return LEVELS[: cpu_level() + 1]


def set_isa(isa: str) -> None:
    """Run the native kernels at ``isa`` (``"generic"``, ``"avx2"`` or ``"avx512"``).

    For tests and benchmarks: results do not depend on the level (every level computes the
    same numbers bit for bit); only the speed does. Asking for a level this CPU lacks
    raises ``ValueError``; setting it while kernels run on other threads is allowed (each
    kernel call reads the level once).

    Raises
    ------
    TypeError
        If ``isa`` is not a str.
    ValueError
        If ``isa`` is not a level, or is above what this CPU supports.
    """
    from ._native import parse_level, set_level

    index = parse_level(isa, what="isa")
    with _lock:
        set_level(index)


@contextlib.contextmanager
def isa(level: str) -> Iterator[None]:
    """Context manager: run the enclosed kernels at ISA ``level``, then restore the level."""
    old = get_isa()
    set_isa(level)
    try:
        yield
    finally:
        set_isa(old)
