"""Process-wide settings for the native kernels: thread count and ISA level."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ._forksafe import ForkSafeLock


def _reapply_level() -> None:
    """In a forked child whose parent was inside :func:`set_isa`: one level everywhere."""
    native = sys.modules.get(f"{__package__}._native")
    if native is not None and native._level is not None:
        native.set_level(native._level)


_lock = ForkSafeLock(on_fork=_reapply_level)


def _default_threads() -> int:
    env = os.environ.get("PPML_FAST_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


_num_threads = _default_threads()


def get_num_threads() -> int:
    """Number of threads the native kernels use (default: all cores, or $PPML_FAST_NUM_THREADS).

    This is the setting (:func:`set_num_threads`). One exception applies to the OpenMP
    kernels (noise, clipping, sharing, secure aggregation, accounting, Paillier): in a
    child made by ``os.fork()`` (``multiprocessing``'s ``"fork"`` start method) after the
    parent had run one of them on several threads, they run on one thread for the rest of
    the child's life, with the same results. GNU OpenMP cannot run a thread team in such
    a child (it would wait for ever on the parent's threads, which the child does not
    have). Children made by ``"forkserver"`` or ``"spawn"``, and children forked before
    any multi-threaded kernel ran, use every thread.
    """
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the native kernels use.

    Seeded results do not depend on this: kernels split their work and their random
    stream into fixed blocks, whatever the thread count. In a forked child of a process
    that already ran a multi-threaded OpenMP kernel those kernels stay on one thread
    whatever this is set to (see :func:`get_num_threads`).
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    with _lock:
        _num_threads = n


# --- OpenMP and fork ---------------------------------------------------------------------
# GNU libgomp keeps a pool of worker threads once a parallel region has run on more than
# one thread. A forked child inherits the pool's bookkeeping but none of its threads, and
# its next multi-threaded region waits for them for ever; libgomp cannot be re-initialised
# in the child. So: note when a kernel may have started such a team, and make a child
# forked after that run every OpenMP kernel on one thread (the kernels split their work and
# random streams into fixed blocks, so the results are the same).

#: True once omp_threads() returned more than 1 in this process (or in a forked ancestor).
_omp_team_started = False
#: True in a child forked after _omp_team_started was set: OpenMP kernels use one thread.
_omp_single = False


def omp_threads() -> int:
    """The thread count to pass to an OpenMP (Cython/C) kernel.

    :func:`get_num_threads`, except 1 in a child forked after a multi-threaded OpenMP
    kernel ran in its parent (see :func:`get_num_threads`). Python thread pools (the
    Numba column kernels) keep using :func:`get_num_threads`.
    """
    global _omp_team_started
    if _omp_single:
        return 1
    n = _num_threads
    if n > 1:
        _omp_team_started = True  # set before the kernel runs: a fork in between is covered
    return n


def _after_fork_in_child() -> None:
    global _omp_single
    if _omp_team_started:
        _omp_single = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
