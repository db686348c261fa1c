"""Random streams: cryptographically secure by default, reproducible when seeded.

Every ppml_fast function that draws randomness takes ``rng=``:

- ``None``: the process-wide cryptographically secure stream, AES-128 in counter mode
  (randomgen's ``AESCounter``, AES-NI where the CPU has it) keyed with 128 bits from
  the operating system (:func:`secrets.token_bytes`) on first use and again in every
  forked child. Calls that share it take turns on its lock; give each thread its own
  stream (:func:`spawn`) when many small calls run concurrently.
- an ``int`` (or ``numpy.random.SeedSequence``): a reproducible stream of the same
  kind. **Seeded noise is for testing only**: whoever knows the seed can remove the
  noise. DP mechanisms warn once per process (:class:`InsecureRandomnessWarning`).
- a ``numpy.random.Generator`` or ``BitGenerator``: used as given (and not treated as
  secure unless it came from :func:`default_rng` without a seed).

Native kernels split a stream deterministically: a call for ``n`` values is cut into
fixed blocks of :data:`BLOCK` values, and block ``k`` draws from a child stream keyed by
the parent's next output (:func:`children`; for AES-CTR a fresh 128-bit key per block).
The blocks do not depend on the thread count, so a seeded call returns the same array on
one thread or many; and no block replays the parent or a numpy ``jumped`` copy of it.
"""

from __future__ import annotations

import numbers
import os
import secrets
import threading
import warnings
import weakref
from typing import Any

import numpy as np
from randomgen import AESCounter

from ._errors import InsecureRandomnessWarning
from ._streams import BLOCK, children
from ._types import RngLike

__all__ = [
    "BLOCK",
    "Generator",
    "default_rng",
    "is_secure",
    "resolve",
    "resolve_for_dp",
    "spawn",
    "warn_if_insecure",
]

#: Every live stream keyed from the operating system (secure, or unseeded with
#: ``secure=False``), re-keyed in a forked child (see _after_fork_in_child).
_live_os_keyed: weakref.WeakSet[np.random.Generator] = weakref.WeakSet()
#: Every live ppml_fast Generator: a forked child frees a bit-generator lock that a
#: thread of the parent held at the fork (see _after_fork_in_child).
_live_all: weakref.WeakSet[np.random.Generator] = weakref.WeakSet()

_NO_COPY = (
    "a secure ppml_fast stream cannot be pickled or copied: a copy would repeat its "
    "numbers; create or spawn a fresh stream where it is needed"
)


class _SecureAESCounter(AESCounter):  # type: ignore[misc]
    """The AES-CTR bit generator of a secure stream: it refuses to be pickled or copied
    (``pickle``, ``copy.copy``, ``copy.deepcopy``), since a copy replays the keystream.
    Its children (:func:`children`, :func:`spawn`) are of this type too."""

    def __reduce__(self) -> Any:
        raise TypeError(_NO_COPY)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(_NO_COPY)

    def __copy__(self) -> Any:
        raise TypeError(_NO_COPY)

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError(_NO_COPY)


class Generator(np.random.Generator):
    """A ``numpy.random.Generator`` that knows whether its stream is secure.

    ``secure`` is True only for streams keyed from the operating system's CSPRNG by
    :func:`default_rng` or :func:`spawn`; everything numpy's ``Generator`` offers works.
    """

    secure: bool

    def __init__(self, bit_generator: np.random.BitGenerator, *, secure: bool = False) -> None:
        super().__init__(bit_generator)
        self.secure = bool(secure)
        if self.secure:
            _live_os_keyed.add(self)
        _live_all.add(self)

    def __reduce__(self) -> Any:
        if self.secure:
            # A copy would replay the same noise/shares in two places.
            raise TypeError(_NO_COPY)
        return super().__reduce__()

    def __repr__(self) -> str:
        kind = "secure" if self.secure else "seeded"
        return f"ppml_fast.rng.Generator({type(self.bit_generator).__name__}, {kind})"


def _os_key() -> int:
    return int.from_bytes(secrets.token_bytes(16), "little")


def default_rng(seed: RngLike = None, *, secure: bool | None = None) -> np.random.Generator:
    """Return a random stream for ppml_fast functions.

    Parameters
    ----------
    seed : None, int, SeedSequence, numpy Generator or BitGenerator
        ``None`` gives a fresh secure stream (AES-128-CTR keyed from the OS). An int or
        ``SeedSequence`` gives a reproducible AES-CTR stream (for tests). A numpy
        ``Generator`` is returned unchanged; a ``BitGenerator`` is wrapped.
    secure : bool, optional
        ``None`` (default): secure exactly when ``seed`` is None. ``True``: demand a
        secure stream, so any seed raises ``ValueError`` (as Opacus' ``secure_mode``
        refuses one). ``False``: an unseeded stream not marked secure.

    Security
    --------
    Only an unseeded stream is fit for noise, shares, masks or keys that protect
    someone. A seeded stream gives the same numbers to anyone who knows the seed.
    """
    return _from_seed(seed, secure, "seed")


def _from_seed(seed: RngLike, secure: bool | None, name: str) -> np.random.Generator:
    """:func:`default_rng`, with errors about ``seed`` naming ``name``: the parameter the
    caller passed it as (``rng`` for :func:`resolve` and :func:`spawn`)."""
    if secure is not None and not isinstance(secure, (bool, np.bool_)):
        raise TypeError(f"secure must be None or a bool, got {type(secure).__name__}")
    if seed is None:
        if secure is None or secure:
            return Generator(_SecureAESCounter(key=_os_key()), secure=True)
        gen = Generator(AESCounter(key=_os_key()), secure=False)
        _live_os_keyed.add(gen)  # not marked secure, but still never replayed by a fork
        return gen
    if secure:
        raise ValueError(
            f"{name} must be None when secure=True: a seeded stream is reproducible, not secure"
        )
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.BitGenerator):
        return Generator(seed, secure=False)
    if isinstance(seed, np.random.SeedSequence):
        return Generator(AESCounter(seed), secure=False)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be None, an int, a SeedSequence, a numpy Generator or BitGenerator, "
            f"got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {seed}")
    return Generator(AESCounter(int(seed)), secure=False)


#: A lower bound on the memory one child of :func:`spawn` takes (a numpy ``Generator``
#: around an AES-CTR bit generator, with its buffers and lock): the bound on ``n``.
CHILD_BYTES = 1024


def spawn(rng: RngLike, n: int) -> list[np.random.Generator]:
    """Return ``n`` independent child streams of ``rng`` (for parties, clients, threads).

    Each child is keyed by fresh output of the parent (:func:`children`): a secure
    parent has secure children, a seeded parent has reproducible children, and no child
    overlaps the parent's own future output or a numpy ``jumped`` copy of it.

    ``n`` is bounded by memory: each child stream takes about ``CHILD_BYTES`` bytes, and
    an ``n`` whose children would not fit this machine's physical memory raises
    ``ValueError`` (naming ``n``) before any child is made.
    """
    from ._validation import check_allocation, check_int

    n = check_int(n, "n", minimum=0)
    check_allocation(n * CHILD_BYTES, "n", f"{n} child streams of about {CHILD_BYTES} bytes each")
    if rng is None or not isinstance(rng, np.random.Generator):
        gen = _from_seed(rng, None, "rng")
    else:
        gen = rng
    bg = gen.bit_generator
    with bg.lock:
        kids = children(bg, n)
    if kids is None:
        raise TypeError(f"cannot split a stream of {type(bg).__name__}: it takes no seed")
    secure = is_secure(gen)
    out: list[np.random.Generator] = [Generator(k, secure=secure) for k in kids]
    if gen in _live_os_keyed:  # children of an OS-keyed stream are re-keyed after fork too
        _live_os_keyed.update(out)
    return out


def is_secure(gen: np.random.Generator) -> bool:
    """True when ``gen`` is a ppml_fast stream keyed from the operating system."""
    return bool(getattr(gen, "secure", False))


# --- the process-wide secure stream behind rng=None, and fork safety -------------------

_shared: np.random.Generator | None = None
_shared_lock = threading.Lock()


def _free_lock(lock: Any) -> None:
    """Make a bit generator's lock usable in a forked child. A lock that a thread of the
    parent held stays locked here (that thread is gone): it is reset in place, since each
    numpy ``Generator`` keeps its own reference to it. A re-entrant lock that the forking
    thread holds is taken again and so left as it is."""
    if lock.acquire(blocking=False):
        lock.release()
        return
    reinit = getattr(lock, "_at_fork_reinit", None)
    if reinit is not None:
        reinit()


def _after_fork_in_child() -> None:
    """A forked child must never replay its parent's noise: re-key every stream keyed from
    the operating system (seeded streams stay reproducible), and free every stream's lock
    that another thread held at the fork."""
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()  # another thread may have held it at the fork
    for gen in list(_live_all):
        _free_lock(gen.bit_generator.lock)
    for gen in list(_live_os_keyed):
        bg = gen.bit_generator
        if isinstance(bg, AESCounter):  # a state is only accepted from the same type
            bg.state = type(bg)(key=_os_key()).state


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _secure_stream() -> np.random.Generator:
    global _shared
    gen = _shared
    if gen is None:
        with _shared_lock:
            if _shared is None:
                _shared = default_rng()
            gen = _shared
    return gen


def resolve(rng: RngLike) -> np.random.Generator:
    """The stream a call with ``rng=`` uses (``None`` → the process-wide secure stream)."""
    if rng is None:
        return _secure_stream()
    if isinstance(rng, np.random.Generator):
        return rng
    return _from_seed(rng, None, "rng")


_warned = False


def resolve_for_dp(rng: RngLike) -> np.random.Generator:
    """Like :func:`resolve`, but warn once per process when the stream is not secure."""
    gen = resolve(rng)
    warn_if_insecure(gen, stacklevel=4)
    return gen


def warn_if_insecure(gen: np.random.Generator, stacklevel: int = 3) -> None:
    """Warn once per process (:class:`InsecureRandomnessWarning`) if ``gen`` is not secure.

    ``stacklevel`` counts from the caller of this function (as in :func:`warnings.warn`).
    """
    global _warned
    if not _warned and not is_secure(gen):
        _warned = True
        warnings.warn(
            "a seeded or non-cryptographic random stream is feeding randomness that protects "
            "someone (DP noise, secret shares, masks, Beaver triples): it is reproducible by "
            "anyone who knows the seed. Use rng=None outside tests.",
            InsecureRandomnessWarning,
            stacklevel=stacklevel,
        )


def _reset_dp_warning() -> None:
    """Re-arm the once-per-process warning (for tests)."""
    global _warned
    _warned = False
