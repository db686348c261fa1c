"""Soak tests: each kernel family called thousands of times, with the process's resident
memory (RSS, from /proc/self/statm) growing by less than ``BOUND`` over the loop after a
warm-up.

Why the bound: after the warm-up, the allocators' caches (glibc's arenas and top pad,
pymalloc's arenas, numpy's small-block cache, OpenMP's thread stacks) are filled, and what
the loop frees it reuses; RSS then moves by at most a few hundred KiB (allocator slack and
page-granular bookkeeping). A leak of ``L`` bytes per iteration over ``N`` iterations
grows RSS by ``N·L``: each loop below states the ``N`` it runs, so the smallest leak it
catches is ``BOUND / N`` per iteration (e.g. 84 bytes per call over 50,000 calls). When
this file was written, every loop was run once with a deliberate leak of 1.05·BOUND/N
bytes per iteration (a bytearray appended to a list) and every one of them failed; a
100-byte leak fails the noise loops. glibc's free heap is trimmed before each loop, so that
memory freed earlier cannot absorb a leak unseen.

Every test is marked slow; the whole file takes well under a minute.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import warnings
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

import ppml_fast
from ppml_fast import aggregation as agg
from ppml_fast import clipping, mechanisms, noise, sharing
from ppml_fast import paillier as pl
from ppml_fast.rng import BLOCK, default_rng

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm"),
    pytest.mark.filterwarnings("ignore::ppml_fast.InsecureRandomnessWarning"),
]

MiB = 1 << 20
BOUND = 4 * MiB


def rss() -> int:
    """The resident set size of this process in bytes (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    """Hand glibc's free heap memory back to the OS, so that memory freed before the loop
    (by the warm-up or an earlier test) cannot absorb a leak without RSS growing."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the bound still holds, less tightly
        pass


def _grown(body: Callable[[], object], n: int) -> int:
    """The RSS growth over ``n`` calls of ``body``, from a trimmed heap."""
    gc.collect()
    _malloc_trim()
    before = rss()
    for _ in range(n):
        body()
    gc.collect()
    return rss() - before


def soak(body: Callable[[], object], n: int, warmup: int | None = None) -> int:
    """Run ``body`` ``warmup`` times, then ``n`` times; return the RSS growth over the
    ``n`` calls and assert it is below ``BOUND``.

    A loop that grows past the bound runs once more and the smaller growth counts: a leak
    grows RSS on every run, while a one-off growth (another thread of the test process,
    such as an executor or a Dask client's loop left by an earlier test, allocating during
    the loop) does not come back.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ppml_fast.InsecureRandomnessWarning)
        for _ in range(max(1, n // 10) if warmup is None else warmup):
            body()
        grown = _grown(body, n)
        if grown >= BOUND:
            grown = min(grown, _grown(body, n))
    assert grown < BOUND, f"RSS grew by {grown / MiB:.1f} MiB over {n} calls (twice)"
    return grown


# --- noise ---------------------------------------------------------------------------------


def test_soak_continuous_noise():
    gen = default_rng(1)
    out32 = np.empty(5, np.float32)

    def small():
        noise.laplace(1.0, 7, rng=gen)
        noise.gaussian(2.0, 3, rng=gen, dtype=np.float32)
        noise.gaussian(1.0, out=out32, dtype=np.float32)  # the secure stream, into a buffer

    soak(small, 50_000)  # catches >= 84 bytes per iteration

    def multi_block():  # the threaded path over child streams
        noise.laplace(1.0, 2 * BLOCK + 3, rng=gen)

    soak(multi_block, 60, warmup=5)  # one leaked output is 2 MiB: 2 leaks fail


def test_soak_discrete_noise():
    gen = default_rng(2)

    def body():
        noise.discrete_laplace(Fraction(7, 3), 5, rng=gen)
        noise.discrete_gaussian(10.3, 5, rng=gen)

    soak(body, 40_000)  # catches >= 105 bytes per iteration
    soak(lambda: noise.discrete_gaussian(3, BLOCK + 7, rng=gen), 40, warmup=5)


# --- mechanisms ----------------------------------------------------------------------------


def test_soak_mechanisms():
    gen = default_rng(3)
    x = np.arange(6.0)
    scores = np.random.default_rng(0).random((3, 20))
    bits = np.array([True, False, True])

    def body():
        mechanisms.laplace_mechanism(x, 1.0, 0.5, rng=gen)
        mechanisms.gaussian_mechanism(x, 1.0, 1.0, 1e-5, rng=gen)
        mechanisms.geometric_mechanism(np.arange(6), 1, Fraction(1, 2), rng=gen)
        mechanisms.exponential_mechanism(scores, epsilon=1.0, sensitivity=1.0, rng=gen)
        mechanisms.randomized_response(bits, 1.0, rng=gen)

    soak(body, 15_000)  # catches >= 280 bytes per iteration of five calls


# --- clipping ------------------------------------------------------------------------------


def test_soak_clipping():
    gen = default_rng(4)
    g = np.random.default_rng(0).standard_normal((4, 8))
    layers = [g[:, :3].copy(), g[:, 3:].reshape(4, 5, 1).copy()]
    out = np.empty_like(g)

    def body():
        clipping.clip_per_sample(g, 1.0, out=out)
        clipping.clip_and_sum(layers, [0.5, 1.0])
        clipping.dp_aggregate(g, 1.0, 1.1, rng=gen, expected_batch_size=4)

    soak(body, 15_000)  # catches >= 280 bytes per iteration of three calls
    big = np.random.default_rng(1).standard_normal((256, 4096)).astype(np.float32)
    soak(lambda: clipping.dp_aggregate(big, 1.0, 1.1, rng=gen), 60, warmup=5)


# --- sharing -------------------------------------------------------------------------------


def test_soak_sharing():
    gen = default_rng(5)
    v = np.arange(4, dtype=np.uint64)
    a = np.arange(64, dtype=np.uint64).reshape(8, 8)
    p = sharing.MERSENNE61

    def body():
        s = sharing.additive_share(v, 3, rng=gen)
        sharing.additive_reconstruct(s)
        t = sharing.shamir_share(v, n_parties=3, threshold=2, rng=gen)
        sharing.shamir_reconstruct(t[[0, 2]], [1, 3])
        sharing.matmul(a, a)
        sharing.matmul(a, a, modulus=p)

    soak(body, 6_000)  # catches >= 700 bytes per iteration of six calls


# --- Paillier ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_length", "n"), [(256, 1500), (1024, 300)])
def test_soak_paillier(n_length, n):
    pk, sk = pl.generate_paillier_keypair(n_length=n_length)
    x = np.array([1.5, -2.0, 3.0, 7.0])

    def body():
        e = pk.encrypt_batch(x)
        sk.decrypt_batch(e)
        sk.decrypt(e.sum())
        sk.decrypt(pk.encrypt(3) + 1)

    # catches >= 2.7 KiB per iteration at 256 bits (e.g. the 4 ciphertexts of one batch
    # and their CRT temporaries), >= 14 KiB at 1024 bits (a per-call copy of the key's
    # tables); a single leaked 1024-bit ciphertext per call is below what 300 calls show
    soak(body, n, warmup=20)


# --- secure aggregation --------------------------------------------------------------------


def test_soak_secure_aggregation():
    pytest.importorskip("cryptography")
    gen = default_rng(6)
    u = np.random.default_rng(0).normal(0, 0.5, (4, 8192))

    def body():
        agg.secure_aggregate(u, clip=4.0, rng=gen)
        agg.secure_aggregate(u, clip=4.0, neighbors="auto", dropout=[1], rng=gen)

    soak(body, 100, warmup=5)  # 64 KiB masks: one leaked mask per round (6.4 MiB) fails
