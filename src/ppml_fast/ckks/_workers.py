"""The encryption worker processes: fresh interpreters fed over pipes.

TenSEAL holds the GIL while it encrypts, so parallel encryption needs processes. They are
started as fresh interpreters (``python -c ...`` through :mod:`subprocess`), not by
:mod:`multiprocessing`:

- ``fork`` is unsafe here: a TenSEAL context owns a thread pool, and a child forked while
  one of those threads holds a lock (SEAL's memory pool, the allocator) waits for ever;
- ``spawn`` and ``forkserver`` re-import the caller's main module in every worker, so a
  script without an ``if __name__ == "__main__"`` guard would fail.

A fresh interpreter imports only this package. Each request is a length-prefixed pickle
on the worker's stdin; each reply one on its stdout. The blocks of one call go to the
workers side by side (one block each), and the replies are read in order; a lock keeps
concurrent callers from interleaving. Workers live for the life of the process (a child
made by ``fork`` starts its own) and exit when their stdin closes.
"""

from __future__ import annotations

import atexit
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = ["run_blocks", "serve"]

_HEADER = struct.Struct("<Q")


def _write(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_reply(stream: IO[bytes]) -> tuple[Any, ...]:
    """("ok", bytes) for a raw reply, or the pickled error tuple."""
    kind = stream.read(1)
    if kind == b"R":
        head = stream.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise EOFError
        (n,) = _HEADER.unpack(head)
        data = stream.read(n)
        if len(data) < n:
            raise EOFError
        return ("ok", data)
    if not kind:
        raise EOFError
    rest = _read(stream, kind)
    return tuple(rest)


def _read(stream: IO[bytes], first: bytes = b"") -> Any:
    head = first + stream.read(_HEADER.size - len(first))
    if len(head) < _HEADER.size:
        raise EOFError
    (n,) = _HEADER.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


def serve() -> None:  # pragma: no cover - runs in the worker interpreters
    """The worker's loop: read (function name, args), reply ("ok", result) or ("err", ...)."""
    from . import _wire

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the reply stream.
    sys.stdout = sys.stderr
    while True:
        try:
            name, args = _read(stdin)
        except EOFError:
            return
        try:
            result = getattr(_wire, name)(*args)
        except Exception as exc:  # reported to the caller, who raises it
            _write(stdout, ("err", type(exc).__name__, str(exc)))
        else:
            # Raw bytes, not pickled: the reply is read straight into the result.
            stdout.write(b"R" + _HEADER.pack(len(result)))
            stdout.write(result)
            stdout.flush()


class _Worker:
    def __init__(self) -> None:
        import ppml_fast

        root = os.path.dirname(os.path.dirname(os.path.abspath(ppml_fast.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        # One thread per worker: the workers are the parallelism.
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from ppml_fast.ckks._workers import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )

    def send(self, request: Any) -> None:
        assert self.proc.stdin is not None
        _write(self.proc.stdin, request)

    def receive(self) -> tuple[Any, ...]:
        assert self.proc.stdout is not None
        try:
            return _read_reply(self.proc.stdout)
        except EOFError:
            raise RuntimeError(
                f"a CKKS encryption worker exited unexpectedly (code {self.proc.poll()})"
            ) from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


_workers: list[_Worker] = []
_lock = threading.Lock()


def _reset_in_child() -> None:
    """A forked child must not use its parent's pipes: it starts its own workers."""
    global _workers, _lock
    _workers = []
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


@atexit.register
def _shutdown() -> None:
    for w in _workers:
        w.close()
    _workers.clear()


def run_blocks(
    name: str, blocks: list[tuple[Any, ...]], local: Callable[[], bytes] | None = None
) -> list[bytes]:
    """``_wire.<name>(*args)`` (returning bytes) for each args in ``blocks``, one worker
    process each, side by side, while the caller runs ``local()`` (if given); the results
    in order, ``local``'s first. Workers are started on first use (and replaced if one
    has died)."""
    with _lock:
        _workers[:] = [w for w in _workers if w.alive()]
        while len(_workers) < len(blocks):
            _workers.append(_Worker())
        used = _workers[: len(blocks)]
        try:
            for w, args in zip(used, blocks, strict=True):
                w.send((name, args))
            mine = [] if local is None else [local()]
            replies = [w.receive() for w in used]
        except BaseException:
            # A half-read reply would desynchronise the pipes: drop these workers.
            for w in used:
                w.proc.kill()
            _workers[:] = [w for w in _workers if w not in used]
            raise
    for reply in replies:
        if reply[0] != "ok":
            kind = {"ValueError": ValueError, "TypeError": TypeError}.get(reply[1], RuntimeError)
            raise kind(f"in a CKKS encryption worker: {reply[2]}")
    return mine + [reply[1] for reply in replies]
