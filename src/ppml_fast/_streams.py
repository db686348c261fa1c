"""Deterministic splitting of one random stream into per-block bit generators.

Shared plumbing of :mod:`ppml_fast.rng` and of every API module whose kernel fills an
array on several threads: the block size, the child streams of a parent, and
:func:`split`.

A kernel that fills ``n`` values on several threads asks :func:`split` for one bit
generator per block of ``block`` values. The blocks depend only on ``n`` and ``block``,
never on the thread count, so a seeded stream gives the same array on any number of
threads. Small calls (one block) and bit generators that cannot seed children use the
parent stream itself, under its lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from randomgen import AESCounter

#: Values per independent block when a kernel splits one stream over threads.
BLOCK = 1 << 17


def children(bg: np.random.BitGenerator, n: int) -> list[np.random.BitGenerator] | None:
    """``n`` bit generators keyed by the next output of ``bg`` (the caller holds its lock).

    An AES-CTR parent gives AES-CTR children, each keyed with 128 fresh bits of the
    parent's keystream (a key derived from a secure stream is secure). Other numpy bit
    generators give children of their own type seeded with a ``SeedSequence`` of 256
    fresh bits. Returns None when the bit generator's type cannot be built from a seed.
    """
    if isinstance(bg, AESCounter):  # the parent's type: a secure stream's children refuse copies
        words = bg.random_raw(2 * n)
        kind = type(bg)
        return [kind(key=int(words[2 * i]) | (int(words[2 * i + 1]) << 64)) for i in range(n)]
    try:
        words = bg.random_raw(4 * n)
        return [
            type(bg)(np.random.SeedSequence([int(w) for w in words[4 * i : 4 * i + 4]]))
            for i in range(n)
        ]
    except TypeError:
        return None


@contextlib.contextmanager
def split(
    gen: np.random.Generator, n: int, block: int = BLOCK
) -> Iterator[tuple[list[np.random.BitGenerator], int]]:
    """Yield ``(bit_generators, block)`` for a fill of ``n`` values.

    Block ``k`` (values ``k*block`` to ``(k+1)*block``) draws from ``bit_generators[k]``,
    a child keyed by the parent's next output (:func:`children`). With a
    single block, or a bit generator that cannot seed children, the list holds the
    parent alone, the block covers everything, and its lock is held while the caller runs.
    """
    bg = gen.bit_generator
    nblocks = -(-n // block) if n > 0 else 1
    kids = None
    with bg.lock:
        if nblocks > 1:
            kids = children(bg, nblocks)
        if kids is None:
            yield [bg], max(n, 1)
            return
    yield kids, block
