"""The encryption worker processes: fresh interpreters fed over pipes, sharing the chunks
of one update with the calling process.

TenSEAL holds the GIL while it encrypts, so parallel encryption needs processes. They are
started as fresh interpreters (``python -c ...`` through :mod:`subprocess`), not by
:mod:`multiprocessing`:

- ``fork`` is unsafe here: a TenSEAL context owns a thread pool, and a child forked while
  one of those threads holds a lock (SEAL's memory pool, the allocator) waits for ever;
- ``spawn`` and ``forkserver`` re-import the caller's main module in every worker, so a
  script without an ``if __name__ == "__main__"`` guard would fail.

A fresh interpreter imports only this package. Workers live for the life of the process
(a child made by ``fork`` starts its own) and exit when their stdin closes.

Sharing the chunks. With W participants (the caller and W - 1 workers), the chunks are
cut into segments: the caller and the first worker share the first segment, twice the
size of the others, from its two ends, the caller upwards and the worker downwards, and
the worker stops when the caller tells it they have met; each other worker encrypts a
segment of its own. The meeting point adapts to whichever side runs faster, so the caller
never waits for a worker that drew a slow core. A worker writes its ciphertexts to its own
scratch file as it goes and reports each one on its stdout (index, offset, length: 25
bytes), so the pipe never fills and the caller's reads cost nothing while it encrypts;
the caller reads the files once at the end.

Wire protocol (requests: a length-prefixed pickle on the worker's stdin): a request is
``(name, args, stoppable)``; the worker replies with records ``C`` (a chunk done), then
``D`` (done) or ``E`` (an error, followed by its message). A stoppable request also reads
exactly one stop byte ``S`` from its stdin before it replies ``D`` or ``E``, so that byte
never reaches the next request.
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["encrypt_chunks", "serve"]

_LEN = struct.Struct("<Q")
_RECORD = struct.Struct("<cQQQ")  # kind, index, offset, length


def _read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        data = os.read(fd, n)
        if not data:
            raise EOFError
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve() -> None:  # pragma: no cover - runs in the worker interpreters
    """The worker's loop (stdin and stdout unbuffered: a stop byte must not be read ahead
    into a buffer that ``select`` cannot see)."""
    from . import _wire

    # Ctrl-C in the caller's terminal reaches its whole process group: the caller handles
    # it (and kills the workers it was using); an idle worker ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fin = sys.stdin.fileno()
    # The replies go to a private copy of fd 1; fd 1 itself (C code, print) goes to
    # stderr, so nothing else can write into the record stream.
    fout = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    while True:
        try:
            (n,) = _LEN.unpack(_read_exact(fin, _LEN.size))
            _name, args, stoppable = pickle.loads(_read_exact(fin, n))
        except EOFError:
            return
        stopped = False
        error = None
        try:
            context_bytes, values, slots, scale, symmetric, indices, first, path = args
            # A symmetric engine holds the secret key: made per request, never cached.
            engine = (
                _wire.make_engine(context_bytes, True)
                if symmetric
                else _wire.cached_public_engine(context_bytes)
            )
            with open(path, "wb") as out:
                offset = 0
                for i in indices:  # local chunk indices; chunk ``first + i`` of the update
                    data = _wire.encrypt_chunk(engine, values, i, slots, scale, symmetric)
                    out.write(data)
                    out.flush()
                    _write_all(fout, _RECORD.pack(b"C", first + i, offset, len(data)))
                    offset += len(data)
                    if stoppable and select.select([fin], [], [], 0)[0]:
                        _read_exact(fin, 1)
                        stopped = True
                        break
        except Exception as exc:  # reported to the caller, who raises it
            error = f"{type(exc).__name__}: {exc}".encode()
        if stoppable and not stopped:
            try:
                _read_exact(fin, 1)
            except EOFError:
                return
        if error is None:
            _write_all(fout, _RECORD.pack(b"D", 0, 0, 0))
        else:
            _write_all(fout, _RECORD.pack(b"E", 0, 0, len(error)) + error)


class _Worker:
    def __init__(self) -> None:
        import ppml_fast

        root = os.path.dirname(os.path.dirname(os.path.abspath(ppml_fast.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from ppml_fast.ckks._workers import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.fin = self.proc.stdin.fileno()
        self.fout = self.proc.stdout.fileno()
        self.pending = b""

    def send(self, request: Any) -> None:
        data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(self.fin, _LEN.pack(len(data)) + data)

    def stop(self) -> None:
        _write_all(self.fin, b"S")

    def records(self, block: bool) -> list[tuple[bytes, int, int, int]]:
        """The records available now (``block``: at least one, waiting for it)."""
        if block or select.select([self.fout], [], [], 0)[0]:
            data = os.read(self.fout, 1 << 16)
            if not data:
                raise RuntimeError(
                    f"a CKKS encryption worker exited unexpectedly (code {self.proc.poll()})"
                )
            self.pending += data
        out = []
        while len(self.pending) >= _RECORD.size:
            kind, i, off, n = _RECORD.unpack_from(self.pending)
            if kind == b"E":
                if len(self.pending) < _RECORD.size + n:
                    break
                message = self.pending[_RECORD.size : _RECORD.size + n].decode(errors="replace")
                self.pending = self.pending[_RECORD.size + n :]
                raise RuntimeError(f"in a CKKS encryption worker: {message}")
            self.pending = self.pending[_RECORD.size :]
            out.append((kind, i, off, n))
        return out

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


def _scratch_dir(nbytes: int) -> str | None:
    """/dev/shm (memory) when it has room for ``nbytes`` twice over, else the default
    temporary directory (a container's /dev/shm is often only 64 MB)."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize > 2 * nbytes:
        return "/dev/shm"
    return None


def encrypt_chunks(
    args: tuple[Any, ...],
    n_chunks: int,
    participants: int,
    local: Callable[[int], bytes],
) -> list[bytes | memoryview]:
    """The serialised chunks 0..n_chunks-1, encrypted by the caller (``local(i)``) and
    ``participants - 1`` worker processes (``args``: the context bytes, the values, the
    slots, the scale, symmetric); see the module's notes."""
    n_workers = max(1, min(participants - 1, n_chunks - 1))
    # Segment boundaries: the first (shared) segment has weight 2, the others 1.
    unit = n_chunks / (n_workers + 1)
    bounds = [0] + [min(n_chunks, round(unit * (k + 2))) for k in range(n_workers)]
    bounds[-1] = n_chunks
    with _lock:
        _workers[:] = [w for w in _workers if w.alive()]
        while len(_workers) < n_workers:
            _workers.append(_Worker())
        used = _workers[:n_workers]
        paths: list[str] = []
        try:
            for k, w in enumerate(used):
                # A serialised ciphertext takes at most ~100 bytes per value (N = 8192).
                expected = 100 * (bounds[k + 1] - bounds[k]) * args[2]
                fd, path = tempfile.mkstemp(prefix="ppml_fast_ckks_", dir=_scratch_dir(expected))
                os.close(fd)
                paths.append(path)
                lo, hi = bounds[k], bounds[k + 1]
                context_bytes, values, slots, scale, symmetric = args
                segment = values[lo * slots : hi * slots]  # only the worker's values travel
                indices = range(hi - lo - 1, -1, -1) if k == 0 else range(hi - lo)
                w.send(
                    (
                        "encrypt",
                        (context_bytes, segment, slots, scale, symmetric, indices, lo, path),
                        k == 0,
                    )
                )
            return _gather(used, paths, bounds, local)
        except BaseException:
            # A half-read exchange would desynchronise the pipes: drop these workers.
            for w in used:
                w.proc.kill()
            _workers[:] = [w for w in _workers if w not in used]
            raise
        finally:
            for path in paths:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _gather(
    used: list[_Worker], paths: list[str], bounds: list[int], local: Callable[[int], bytes]
) -> list[bytes | memoryview]:
    n_chunks = bounds[-1]
    mine: dict[int, bytes] = {}
    places: list[dict[int, tuple[int, int]]] = [{} for _ in used]
    finished = [False] * len(used)
    low = bounds[1]  # the shared segment's lowest index the first worker has done
    i = 0
    # The caller encrypts upwards until it reaches the chunk the first worker is on.
    while i < low - 1:
        mine[i] = local(i)
        i += 1
        # Every worker's records are drained as they come, so no pipe ever fills.
        for k, w in enumerate(used):
            for kind, idx, off, n in w.records(block=False):
                if kind == b"C":
                    places[k][idx] = (off, n)
                    if k == 0:
                        low = min(low, idx)
                else:
                    finished[k] = True
    used[0].stop()
    done = finished
    while not all(done):
        for k, w in enumerate(used):
            if done[k]:
                continue
            for kind, idx, off, n in w.records(block=True):
                if kind == b"C":
                    places[k][idx] = (off, n)
                else:
                    done[k] = True
    # Chunks of the shared segment neither side reached (the worker stopped just before).
    for idx in range(i, bounds[1]):
        if idx not in places[0]:
            mine[idx] = local(idx)
    out: list[bytes | memoryview] = []
    for k, path in enumerate(paths):
        # Mapped, not read: the chunks are views into the worker's file (unlinked by the
        # caller; the pages live as long as a view does), so nothing is copied until the
        # update is sent.
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            blob = (
                memoryview(mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ))
                if size
                else memoryview(b"")
            )
        lo, hi = bounds[k], bounds[k + 1]
        for idx in range(lo, hi):
            if idx in mine:
                out.append(mine[idx])
            else:
                off, n = places[k][idx]
                out.append(blob[off : off + n])
    assert len(out) == n_chunks
    return out
