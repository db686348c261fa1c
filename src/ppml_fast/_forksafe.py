"""Locks that a forked child can always take.

``os.fork()`` copies only the thread that calls it. A lock that another thread held at that
moment stays locked in the child for ever, and the child's first ``with lock:`` waits for a
thread that no longer exists. :class:`ForkSafeLock` is a lock (optionally re-entrant) that
repairs itself in a forked child: every live instance is visited by an ``at fork`` hook,
and one that a vanished thread held is replaced by a free lock, after which the owner's
``on_fork`` callback runs so that it can discard or rebuild what that thread left half
done. A lock held by the thread that forked stays held (that thread goes on in the child
and releases it as usual).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from types import MethodType
from typing import Any

__all__ = ["ForkSafeLock"]

#: Every live lock, visited in a forked child (see _after_fork_in_child).
_live: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


class ForkSafeLock:
    """A ``threading.Lock`` (``reentrant=False``) or ``RLock`` that survives ``fork``.

    Parameters
    ----------
    reentrant : bool, default False
        Allow the owning thread to acquire it again (as ``threading.RLock``).
    on_fork : callable, optional
        Called with no arguments in a forked child when another thread held the lock at
        the fork: the state it protects may be half updated and should be discarded or
        rebuilt. A bound method is held weakly (the lock does not keep its owner alive).
    """

    __slots__ = ("__weakref__", "_count", "_lock", "_on_fork", "_owner", "_reentrant")

    def __init__(self, *, reentrant: bool = False, on_fork: Callable[[], Any] | None = None):
        self._reentrant = bool(reentrant)
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._count = 0
        self._on_fork: Callable[[], Callable[[], Any] | None] | None
        if on_fork is None:
            self._on_fork = None
        elif isinstance(on_fork, MethodType):
            self._on_fork = weakref.WeakMethod(on_fork)
        else:
            self._on_fork = lambda: on_fork
        _live.add(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, as ``threading.Lock.acquire`` (re-entrant when so built)."""
        me = threading.get_ident()
        if self._owner == me:  # only this thread ever writes its own ident here
            if not self._reentrant:
                if not blocking:
                    return False
                raise RuntimeError("ForkSafeLock is not re-entrant: this thread already holds it")
            self._count += 1
            return True
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        return True

    def release(self) -> None:
        """Release the lock (once per acquire); only the owning thread may."""
        if self._owner != threading.get_ident():
            raise RuntimeError("cannot release a ForkSafeLock this thread does not hold")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._lock.release()

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _after_fork_in_child(self) -> None:
        if self._owner == threading.get_ident():
            return  # held by the thread that forked: it goes on and releases it
        if not self._lock.locked():
            self._owner, self._count = None, 0
            return
        # held by a thread that does not exist here (perhaps between its acquire and the
        # owner update, or the reverse on release): a fresh lock, then repair the state
        self._lock = threading.Lock()
        self._owner, self._count = None, 0
        repair = None if self._on_fork is None else self._on_fork()
        if repair is not None:
            repair()


def _after_fork_in_child() -> None:
    for lock in list(_live):
        lock._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
