"""Deterministic splitting of one random stream into per-block bit generators.

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

from ..rng import BLOCK, children


@contextlib.contextmanager
def split(
    gen: np.random.Generator, n: int, block: int = BLOCK
) -> Iterator[tuple[list[np.random.BitGenerator], int]]:
    """Yield ``(bit_generators, block)`` for a fill of ``n`` values.

    Block ``k`` (values ``k*block`` to ``(k+1)*block``) draws from ``bit_generators[k]``,
    a child keyed by the parent's next output (:func:`ppml_fast.rng.children`). With a
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
