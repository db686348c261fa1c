"""A straightforward numpy implementation of the SecAgg/SecAgg+ masked-sum phase.

The benchmark baseline for :mod:`ppml_fast.aggregation.secure`: the same protocol structure (each
surviving client adds its self mask and +/- one mask per neighbour to its quantised
update; the server sums the masked vectors, then subtracts the survivors' self masks and
the masks the survivors shared with dropped clients), with every mask expanded by a numpy
generator (PCG64 seeded from the 16-byte seed) and added with numpy's wrapping uint64
arithmetic. Not for real use: PCG64 is not a cryptographic PRG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def numpy_mask(seed: bytes, dim: int) -> np.ndarray:
    """A uint64 mask from a numpy generator seeded with the seed bytes (not secure)."""
    gen = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "little")))
    return gen.integers(0, 2**64, size=dim, dtype=np.uint64)


def numpy_apply(acc: np.ndarray, seeds: Sequence[bytes], signs: Sequence[int]) -> None:
    """acc += sum_j sign_j * numpy_mask(seed_j), wrapping mod 2^64."""
    for seed, sign in zip(seeds, signs, strict=True):
        mask = numpy_mask(seed, acc.size)
        if sign < 0:
            np.subtract(acc, mask, out=acc)
        else:
            np.add(acc, mask, out=acc)


def numpy_masked_round(
    q: np.ndarray,
    client_seeds: dict[int, tuple[list[bytes], list[int]]],
    server_seeds: tuple[list[bytes], list[int]],
) -> np.ndarray:
    """The masked-sum phase: clients in ``client_seeds`` mask their rows of ``q`` (n, D)
    uint64 and send them; the server sums and removes ``server_seeds``; returns the sum."""
    total = np.zeros(q.shape[1], dtype=np.uint64)
    for u, (seeds, signs) in client_seeds.items():
        y = q[u].copy()
        numpy_apply(y, seeds, signs)
        np.add(total, y, out=total)
    numpy_apply(total, *server_seeds)
    return total
